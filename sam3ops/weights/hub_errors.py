"""One clear error per hub failure, chosen by exception type and HTTP status (never message text)."""

from __future__ import annotations

import errno

from sam3ops.errors import (
    DiskSpaceError,
    HubAccessError,
    HubUnreachableError,
    InvalidTokenError,
    RepoNotFoundError,
    RevisionNotFoundError,
    http_status,
    transport_failure,
)
from sam3ops.weights import resumable

_INVALID_TOKEN = "the hub rejected the Hugging Face token (401)"


def hub_error(exc: BaseException, repo_id: str, revision: str) -> BaseException:
    """Translate a huggingface_hub / network exception into one of our one-line errors.

    Args:
        exc: what huggingface_hub, requests or the disk raised.
        repo_id, revision: what was asked for, for the message.

    Returns:
        A :class:`sam3ops.errors.HubError` (or :class:`DiskSpaceError`), or ``exc`` itself when it
        is not a hub failure we know.
    """
    import requests
    from huggingface_hub import errors as hf_errors

    page = f"https://huggingface.co/{repo_id}"
    if isinstance(exc, hf_errors.GatedRepoError):
        return HubAccessError(
            f"{repo_id} is gated and this account has no access",
            hint=f"accept the license on {page} while logged in, then set HF_TOKEN to a token of that account",
        )
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return RepoNotFoundError(
            f"repo {repo_id} not found (or it is private and the token cannot see it)",
            hint="check --repo-id, and set HF_TOKEN if the repo is private",
        )
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return RevisionNotFoundError(
            f"revision {revision!r} not found in {repo_id}", hint="use a branch, tag or full commit sha of the repo"
        )
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        # hf_hub_download's way of saying "the hub could not be reached and no local copy exists"
        return HubUnreachableError(f"cannot reach the hub to download from {repo_id}")
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return HubUnreachableError("HF_HUB_OFFLINE is set, so the hub cannot be reached", hint="unset HF_HUB_OFFLINE")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskSpaceError("the disk filled up during the download",
                              hint="free space and rerun; finished files are kept")
    if isinstance(exc, resumable.TransferError):
        return HubUnreachableError(f"download interrupted: {exc}",
                                   hint="rerun the same command: it resumes where it stopped")
    if isinstance(exc, (hf_errors.HfHubHTTPError, requests.HTTPError)):  # a response came back: its status says what
        return _status_error(http_status(exc), repo_id)
    if (cause := transport_failure(exc)) is not None:
        return HubUnreachableError(f"cannot reach the hub ({type(cause).__name__})")
    return exc


def _status_error(status: int | None, repo_id: str) -> Exception:
    if status == 401:
        return InvalidTokenError(_INVALID_TOKEN)
    if status == 403:
        return HubAccessError(
            f"the token may not read {repo_id} (403)", hint="use a token with read access to public gated repos"
        )
    return HubUnreachableError(f"the hub answered HTTP {status or '?'} for {repo_id}", hint="retry later")


def check_token(api) -> None:
    """Fail fast with a clear line when a token is configured but the hub rejects it.

    Args:
        api: the ``HfApi`` the download uses (its token, else the login's).

    Raises:
        InvalidTokenError: the hub answered 401; any other hub error goes on unchanged.
    """
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import get_token

    if not api.token and not get_token():
        return
    try:
        api.whoami()
    except hf_errors.HfHubHTTPError as exc:
        if http_status(exc) == 401:
            raise InvalidTokenError(_INVALID_TOKEN) from None
        raise
