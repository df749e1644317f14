"""The registry's MLflow client and the small helpers every registry module shares.

Names and constants (the default model and alias, which formats are engines), the who/when stamps,
model URIs, looking up a version, and turning MLflow's failures into our typed errors: by HTTP
status and error code (:mod:`sam3ops.errors`), never by the text of MLflow's messages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import socket
from collections.abc import Iterator

from sam3ops import tracking
from sam3ops.errors import RegistryError, RegistryNotFoundError, UsageError, http_status, safe_url, tracking_error

DEFAULT_NAME = "sam3"
DEFAULT_ALIAS = "production"
ENGINE_FORMATS = ("tensorrt",)  # formats built for one GPU and TensorRT version
# How MLflow answers a lookup of a run, version or alias that does not exist (the code varies by store).
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def client():
    """An ``MlflowClient`` on the configured tracking and registry URI."""
    import mlflow

    tracking.configure()
    return mlflow.MlflowClient()


def who() -> str:
    """user@host of this process, for the who/when/why tags."""
    with contextlib.suppress(Exception):  # getuser() fails for a uid without a passwd entry (containers)
        return f"{getpass.getuser()}@{socket.gethostname()}"
    return f"unknown@{socket.gethostname()}"


def now() -> str:
    """The current UTC time, ISO 8601 to the second, for the who/when tags."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def error_code(exc: Exception) -> str:
    """MLflow's error code of ``exc`` (``RESOURCE_DOES_NOT_EXIST`` ...), empty when it has none."""
    return getattr(exc, "error_code", "") or ""


def where() -> str:
    """The tracking URI without credentials, for messages."""
    return safe_url(tracking.tracking_uri())


def quote(text: str) -> str:
    """``text`` as the inside of a single-quoted string in an MLflow search filter."""
    return text.replace("'", "\\'")


def tracking_failure(exc: Exception, context: str) -> RegistryError:
    """Our typed error for an MLflow failure, as one line that starts with what it stopped.

    Refused credentials and an unreachable server keep their own types (:class:`TrackingAuthError`,
    :class:`TrackingUnreachableError`); any other answer of the server is a :class:`RegistryError`
    naming its error code and HTTP status.
    """
    translated = tracking_error(exc)
    if translated is not None:
        return type(translated)(f"{context}: {translated.message}")
    status = http_status(exc)
    answer = error_code(exc) or "an error"
    return RegistryError(f"{context}: {where()} answered {answer}" + (f" (HTTP {status})" if status else ""),
                         hint="rerun when the tracking server answers normally")


@contextlib.contextmanager
def tracking_errors(context: str) -> Iterator[None]:
    """Inside: an unreachable server or refused credentials raise our typed error (see
    :func:`tracking_failure`) instead of MLflow's; every other MLflow failure passes through as it is."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if tracking_error(exc) is None:
            raise
        raise tracking_failure(exc, context) from None


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split a model URI.

    Args:
        uri: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Returns:
        (name, version, alias): exactly one of version and alias is None.

    Raises:
        UsageError: any other form.
    """
    if not uri.startswith("models:/"):
        raise UsageError(f"{uri!r} is not a models:/ URI", hint="use models:/NAME@ALIAS or models:/NAME/VERSION")
    rest = uri[len("models:/"):].strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, None, alias
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return name, version, None
    raise UsageError(f"cannot read model URI {uri!r}", hint="use models:/NAME@ALIAS or models:/NAME/VERSION")


def resolve_version(*, name: str, version: str | int | None = None, alias: str | None = None):
    """The ``ModelVersion`` of ``name`` by ``version`` or ``alias`` (exactly one).

    Raises:
        UsageError: neither or both given.
        RegistryNotFoundError: no such model, version or alias.
    """
    from mlflow.exceptions import MlflowException

    if (version is None) == (alias is None):
        raise UsageError("give exactly one of --version and --alias")
    mlflow_client = client()
    require_model(mlflow_client, name)
    try:
        if alias is not None:
            return mlflow_client.get_model_version_by_alias(name, alias)
        return mlflow_client.get_model_version(name, str(version))
    except MlflowException as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            what = f"alias {alias!r}" if alias is not None else f"version {version}"
            raise RegistryNotFoundError(f"model {name!r} has no {what}") from None
        raise


def require_model(mlflow_client, name: str):
    """The ``RegisteredModel`` called ``name``.

    Raises:
        RegistryNotFoundError: there is none on this tracking server.
    """
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_registered_model(name)
    except MlflowException as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryNotFoundError(f"registered model {name!r} not found on {where()}",
                                        hint="register a version first: sam3ops register --run-id RUN") from None
        raise
