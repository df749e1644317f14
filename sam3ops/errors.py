"""Typed errors a user can meet, each with a one-line hint that says what to do next.

The CLI catches :class:`Sam3opsError` once, prints ``message (hint)`` on one line and exits with
``exit_code``; the run helper records the same line as the failed run's ``error`` tag.

Errors are grouped by domain (:class:`WeightsError`, :class:`PredictError`, :class:`ConvertError`,
:class:`ServingError`, :class:`RegistryError`), and carry a standard-library mixin where one fits,
so ``except FileNotFoundError`` or ``except LookupError`` also works. Failures of other libraries
(HTTP, MLflow) are translated here by status and error code, never by their message text.
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


class UsageError(Sam3opsError, ValueError):
    """A parameter or combination of parameters that cannot work."""

    exit_code = 2


class IntegrityError(Sam3opsError):
    """A file's bytes do not match the checksum the source published or the manifest recorded."""

    hint = "the bad file was removed; rerun the same command to fetch it again"


class DiskSpaceError(Sam3opsError):
    """Not enough free disk space for the files to download or write."""


# -- weights: hub downloads, presets and weights folders ----------------------------------------


class WeightsError(Sam3opsError):
    """A weights folder is missing, incomplete or not a SAM3 checkpoint (and the base of the weights domain)."""

    hint = "run `sam3ops download` (real weights) or `sam3ops init --preset tiny` (random weights)"


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weights folder (or its manifest) that does not exist."""


class HubError(WeightsError):
    """The hub refused or failed a download."""

    hint = ""


class HubAccessError(HubError, PermissionError):
    """The hub refused access: gated repo without an accepted license, or no token."""


class InvalidTokenError(HubAccessError):
    """The Hugging Face token was rejected."""

    hint = "create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN to it"


class RepoNotFoundError(HubError, LookupError):
    """The repo does not exist (or is private and the token cannot see it)."""


class RevisionNotFoundError(HubError, LookupError):
    """The branch, tag or commit does not exist in the repo."""


class HubUnreachableError(HubError):
    """The hub could not be reached (no network, proxy, offline mode)."""

    hint = "check the network (and HF_ENDPOINT / HF_HUB_OFFLINE), then rerun: finished files are kept"


# -- predict: prompts and images ----------------------------------------------------------------


class PredictError(Sam3opsError):
    """A predict input that cannot be used (base of the predict domain)."""


class PromptsError(PredictError, ValueError):
    """A prompt or prompt-set file is invalid."""


class ImageError(PredictError, ValueError):
    """An input image that cannot be used (missing, empty, corrupt, not an image, too large)."""


class PartialFailureError(PredictError):
    """Some inputs failed while the others succeeded (their outputs are kept)."""

    hint = "see the lines above (and the run's failures.json) for each failed input"


# -- serving: runtimes that load and run a format -----------------------------------------------


class ServingError(Sam3opsError):
    """A runtime that cannot load or run a format here (base of the serving domain)."""


class TensorRTUnavailableError(ServingError):
    """TensorRT cannot run here: no ``tensorrt`` module, or no NVIDIA GPU."""

    hint = "TensorRT needs an NVIDIA GPU and `pip install -e '.[gpu]'`; use the onnx or torch formats on this machine"


class TensorRTError(ServingError):
    """An engine TensorRT cannot load or run."""

    hint = "see the TensorRT log lines above"


# -- convert: conversions and their parity gate -------------------------------------------------


class ConvertError(Sam3opsError):
    """A conversion that could not be made or checked (base of the convert domain)."""


class ParityError(ConvertError):
    """A converted artifact disagrees with the fp32 reference beyond the gate (or has NaN/Inf)."""

    hint = "the artifact is kept but must not be registered; see parity.json in the run"


class TensorRTBuildError(ConvertError, TensorRTError):
    """A graph TensorRT cannot take, or an engine build that failed."""

    hint = "see trt_readiness.json in the run, and the TensorRT log lines above"


# -- registry: the tracking server, registered versions, aliases and pulls ----------------------


class RegistryError(Sam3opsError):
    """A registry or tracking-server operation that failed (base of the registry domain)."""


class RegistryNotFoundError(RegistryError, LookupError):
    """A registered model, version, alias or source run that does not exist."""

    hint = "`sam3ops versions --name NAME` lists the versions of a model and their aliases"


class RegistrationRefusedError(RegistryError):
    """A run that must not become a model version (failed parity, unfinished, not a weights artifact)."""


class PromotionRefusedError(RegistryError):
    """A version that must not take the alias (failed parity, random weights, engine for another GPU)."""


class PromotionConflictError(RegistryError):
    """Another promotion or rollback held the model's lock for longer than we waited."""

    hint = "retry in a moment; a lock older than its TTL is broken automatically"


class EngineMismatchError(RegistryError):
    """A TensorRT engine built for another GPU or TensorRT version than this machine's."""

    hint = "pull a version built on this GPU type, or pass --force to take it anyway"


class PullError(RegistryError):
    """A pull that could not finish (the server kept failing); DEST is left as it was."""

    hint = "rerun the same command when the server is back: files already fetched are kept and resume"


class TrackingAuthError(RegistryError, PermissionError):
    """The tracking server (``mlflow server --app-name basic-auth``) refused the request."""

    hint = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account of that server"


class TrackingUnreachableError(RegistryError):
    """The tracking server could not be reached (down, restarting, wrong URI)."""

    hint = "check MLFLOW_TRACKING_URI and that the server is up, then rerun"


class ArtifactUploadError(RegistryError):
    """A proxied multipart upload whose parts (PUT by the client straight to S3) did not get there."""

    hint = ("this machine PUTs the parts to the server's MLFLOW_S3_ENDPOINT_URL: make it reachable from here, "
            "or unset MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD to upload through the server")


class TrackingServerError(RegistryError):
    """The tracking server is up but answered 5xx until MLflow's retries ran out (its store failed)."""

    hint = ("the server is up but its store failed: read the mlflow server's log (with S3 artifacts: does the "
            "bucket exist, are MLFLOW_S3_ENDPOINT_URL and the server's AWS credentials right), fix it, then rerun")


# -- translating other libraries' failures ------------------------------------------------------


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc``: a response's status code (requests, httpx, huggingface_hub),
    or the status an MLflow error code stands for; None when no response came back."""
    response = getattr(exc, "response", None)
    if isinstance(status := getattr(response, "status_code", None), int):
        return status
    if getattr(exc, "error_code", None) and callable(getter := getattr(exc, "get_http_status_code", None)):
        return int(getter()) if _came_from_a_response(exc) else None
    return None


def _came_from_a_response(exc: BaseException) -> bool:
    """False for MLflow's wrapper of a transport failure (no status: it carries the default INTERNAL_ERROR)."""
    return transport_failure(exc) is None


def _transport_kinds() -> tuple[type[BaseException], ...]:
    """The exception types of a network that failed, in every HTTP client on our paths: the standard
    library's, requests' and urllib3's (MLflow, our downloads), httpx's (huggingface_hub)."""
    import importlib

    import requests
    import urllib3

    kinds = [ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError]
    for module in ("httpx2", "httpx"):  # huggingface_hub's client, whichever of the two this version uses
        try:
            kinds.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(kinds)


def transport_failure(exc: BaseException) -> BaseException | None:
    """The connection or timeout error in ``exc``'s chain (the server never answered), or None."""
    kinds = _transport_kinds()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def tracking_error(exc: BaseException) -> Sam3opsError | None:
    """One of our errors for a tracking-server failure (refused credentials, unreachable, failing), else None."""
    import os

    from urllib3.exceptions import MaxRetryError, ResponseError

    from sam3ops.mlflow_frames import raised_by_multipart_upload

    uri = safe_url(os.environ.get("MLFLOW_TRACKING_URI", "the tracking server"))
    if http_status(exc) in (401, 403):
        given = "" if os.environ.get("MLFLOW_TRACKING_USERNAME") else ", none were given"
        return TrackingAuthError(f"{uri} refused these credentials (HTTP {http_status(exc)}{given})")
    if not type(exc).__module__.startswith("mlflow"):
        return None
    cause = transport_failure(exc)
    if isinstance(cause, MaxRetryError) and isinstance(cause.reason, ResponseError):
        # urllib3 gave up retrying error statuses: the server answered every time, so it is up.
        return TrackingServerError(f"{uri} kept answering with server errors (HTTP 5xx) until the retries ran out")
    if cause is not None:
        return TrackingUnreachableError(f"cannot reach {uri} ({type(cause).__name__})")
    if raised_by_multipart_upload(exc):  # checked last: the server's own failures can come from inside it too
        return ArtifactUploadError(f"a multipart upload to the artifact store of {uri} failed: a part did not reach S3")
    return None


def safe_url(url: str) -> str:
    """``url`` fit for a message: no ``user:password@`` and no query (a signed URL's secret lives there).

    Anything that is not a URL with a host (a path, ``sqlite:///mlflow.db``) comes back unchanged.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query="", fragment=""))
