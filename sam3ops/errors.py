"""Typed errors a user can meet, each with a one-line hint that says what to do next.

The CLI catches :class:`Sam3opsError` once, prints ``message (hint)`` on one line and exits with
``exit_code``; the run helper records the same line as the failed run's ``error`` tag.
"""

from __future__ import annotations


class Sam3opsError(Exception):
    """Base class: an error the user can fix, with a hint on how."""

    hint: str = ""
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def one_line(self) -> str:
        """The message and its hint as a single line."""
        text = f"{self.message} (hint: {self.hint})" if self.hint else self.message
        return " ".join(text.split())


class UsageError(Sam3opsError):
    """A parameter or combination of parameters that cannot work."""

    exit_code = 2


class HubAccessError(Sam3opsError):
    """The hub refused access: gated repo without an accepted license, or no token."""


class InvalidTokenError(Sam3opsError):
    """The Hugging Face token was rejected."""

    hint = "create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN to it"


class RepoNotFoundError(Sam3opsError):
    """The repo does not exist (or is private and the token cannot see it)."""


class RevisionNotFoundError(Sam3opsError):
    """The branch, tag or commit does not exist in the repo."""


class HubUnreachableError(Sam3opsError):
    """The hub could not be reached (no network, proxy, offline mode)."""

    hint = "check the network (and HF_ENDPOINT / HF_HUB_OFFLINE), then rerun: finished files are kept"


class DiskSpaceError(Sam3opsError):
    """Not enough free disk space for the files to download or write."""


class IntegrityError(Sam3opsError):
    """A file's bytes do not match the checksum the source published."""

    hint = "the bad file was removed; rerun the same command to fetch it again"


class WeightsError(Sam3opsError):
    """A weights folder is missing, incomplete or not a SAM3 checkpoint."""

    hint = "run `sam3ops download` (real weights) or `sam3ops init --preset tiny` (random weights)"


class PromptsError(Sam3opsError):
    """A prompt or prompt-set file is invalid."""


class ImageError(Sam3opsError):
    """An input image that cannot be used (missing, empty, corrupt, not an image, too large)."""


class PartialFailureError(Sam3opsError):
    """Some inputs failed while the others succeeded (their outputs are kept)."""

    hint = "see the lines above (and the run's failures.json) for each failed input"


class ParityError(Sam3opsError):
    """A converted artifact disagrees with the fp32 reference beyond the gate (or has NaN/Inf)."""

    hint = "the artifact is kept but must not be registered; see parity.json in the run"


class TensorRTUnavailableError(Sam3opsError):
    """TensorRT cannot run here: no ``tensorrt`` module, or no NVIDIA GPU."""

    hint = "TensorRT needs an NVIDIA GPU and `pip install -e '.[gpu]'`; convert to onnx on this machine instead"


class TensorRTError(Sam3opsError):
    """A graph TensorRT cannot take, or an engine build or load that failed."""

    hint = "see trt_readiness.json in the run, and the TensorRT log lines above"


class RegistryNotFoundError(Sam3opsError):
    """A registered model, version, alias or source run that does not exist."""

    hint = "`sam3ops versions --name NAME` lists the versions of a model and their aliases"


class RegistrationRefusedError(Sam3opsError):
    """A run that must not become a model version (failed parity, unfinished, not a weights artifact)."""


class PromotionRefusedError(Sam3opsError):
    """A version that must not take the alias (failed parity, random weights, engine for another GPU)."""


class PromotionConflictError(Sam3opsError):
    """Another promotion or rollback held the model's lock for longer than we waited."""

    hint = "retry in a moment; a lock older than its TTL is broken automatically"


class EngineMismatchError(Sam3opsError):
    """A TensorRT engine built for another GPU or TensorRT version than this machine's."""

    hint = "pull a version built on this GPU type, or pass --force to take it anyway"


class PullError(Sam3opsError):
    """A pull that could not finish (the server kept failing); DEST is left as it was."""

    hint = "rerun the same command when the server is back: files already fetched are kept and resume"


class TrackingAuthError(Sam3opsError):
    """The tracking server (``mlflow server --app-name basic-auth``) refused the request."""

    hint = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account of that server"


def tracking_auth_error(exc: BaseException) -> TrackingAuthError | None:
    """A :class:`TrackingAuthError` when ``exc`` is mlflow's answer to a 401/403, else None."""
    code = getattr(exc, "error_code", "")
    text = str(exc)
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "error code 401" in text or "error code 403" in text:
        import os

        uri = os.environ.get("MLFLOW_TRACKING_URI", "the tracking server")
        given = "" if os.environ.get("MLFLOW_TRACKING_USERNAME") else ", none were given"
        return TrackingAuthError(f"{uri} refused these credentials (HTTP 401/403{given})")
    return None
