"""The registry's shared helpers: model URIs and the translation of tracking-server failures."""

from __future__ import annotations

import pytest

from sam3ops.errors import RegistryError, TrackingUnreachableError, UsageError
from sam3ops.registry.client import parse_model_uri, tracking_errors, tracking_failure
from tests.support.servers import free_port


def test_model_uris():
    assert parse_model_uri("models:/sam3@production") == ("sam3", None, "production")
    assert parse_model_uri("models:/sam3/4") == ("sam3", "4", None)
    for bad in ("models:/sam3", "runs:/x/model", "models:/@x", "models:/sam3/four"):
        with pytest.raises(UsageError, match="models:/"):
            parse_model_uri(bad)


def _failure(monkeypatch, uri: str | None = None):
    """The MlflowException a real client call raises: asking for a model that does not exist, on the
    test's own store or at ``uri``."""
    from mlflow.exceptions import MlflowException

    from sam3ops.registry.client import client

    if uri is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would take minutes
    with pytest.raises(MlflowException) as caught:
        client().get_registered_model("no-such-model")
    return caught.value


def test_an_unreachable_server_becomes_our_error_and_answers_pass_through(monkeypatch):
    from mlflow.exceptions import MlflowException

    answered = _failure(monkeypatch)  # the store answered: no such model
    with pytest.raises(MlflowException) as caught, tracking_errors("cannot list"):
        raise answered
    assert caught.value is answered  # not a tracking failure: the caller handles it
    other = tracking_failure(answered, "cannot list")
    assert type(other) is RegistryError and other.message.startswith("cannot list: sqlite:///")
    assert other.message.endswith(" answered RESOURCE_DOES_NOT_EXIST (HTTP 404)")

    down = _failure(monkeypatch, f"http://127.0.0.1:{free_port()}")
    translated = tracking_failure(down, "cannot pull 'sam3'")
    assert isinstance(translated, TrackingUnreachableError)
    assert translated.message.startswith("cannot pull 'sam3': cannot reach http://127.0.0.1:")
    with pytest.raises(TrackingUnreachableError, match="^cannot list: cannot reach "), tracking_errors("cannot list"):
        raise down
