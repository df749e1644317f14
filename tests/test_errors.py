"""The typed errors: domains, standard-library mixins, and translation by status and error code."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, PERMISSION_DENIED, UNAUTHENTICATED

from sam3ops import errors


def test_domains_and_standard_mixins():
    expected = {
        errors.WeightsNotFoundError: (errors.WeightsError, FileNotFoundError),
        errors.RepoNotFoundError: (errors.HubError, errors.WeightsError, LookupError),
        errors.RegistryNotFoundError: (errors.RegistryError, LookupError),
        errors.InvalidTokenError: (errors.HubAccessError, PermissionError),
        errors.TrackingAuthError: (errors.RegistryError, PermissionError),
        errors.UsageError: (errors.Sam3opsError, ValueError),
        errors.PromptsError: (errors.PredictError, ValueError),
    }
    for kind, bases in expected.items():
        for base in bases:  # each base on its own: a lost mixin fails here
            assert isinstance(kind("x"), base), (kind, base)
    assert errors.UsageError("x").exit_code == 2
    # A TensorRT failure while building is a convert error and points at the readiness report; the
    # same failure while serving is a serving error whose hint does not.
    build, serve = errors.TensorRTBuildError("x"), errors.TensorRTError("x")
    assert isinstance(build, errors.ConvertError) and isinstance(build, errors.TensorRTError)
    assert "trt_readiness.json" in build.one_line() and "trt_readiness.json" not in serve.one_line()
    assert not isinstance(serve, errors.ConvertError) and isinstance(serve, errors.ServingError)


def test_a_mixin_error_still_reads_as_one_line():
    exc = errors.WeightsNotFoundError("weights folder w not found")
    assert str(exc) == "weights folder w not found"
    assert exc.one_line() == f"weights folder w not found (hint: {errors.WeightsError.hint})"
    with pytest.raises(FileNotFoundError):
        raise exc


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


def _mlflow_transport_failure() -> MlflowException:
    """What mlflow's http_request raises when the server never answers: a new error inside the except."""
    try:
        try:
            raise requests.ConnectionError("Connection refused")
        except Exception as e:
            raise MlflowException(f"API request to http://127.0.0.1:1 failed with exception {e}")  # noqa: B904
    except MlflowException as wrapped:
        return wrapped


def _mlflow_retries_ran_out() -> MlflowException:
    """What mlflow's http_request raises when the server answered 5xx to every retry (as requests
    raises it: a RetryError over urllib3's MaxRetryError whose reason is a ResponseError)."""
    import urllib3

    try:
        try:
            try:
                raise urllib3.exceptions.MaxRetryError(None, "/api", urllib3.exceptions.ResponseError("too many"))
            except urllib3.exceptions.MaxRetryError as e:
                raise requests.exceptions.RetryError(e)  # noqa: B904
        except Exception as e:
            raise MlflowException(f"API request to http://127.0.0.1:1 failed with exception {e}")  # noqa: B904
    except MlflowException as wrapped:
        return wrapped


def test_http_status_from_responses_and_mlflow_codes():
    assert errors.http_status(requests.HTTPError(response=_response(503))) == 503
    assert errors.http_status(MlflowException("denied", error_code=PERMISSION_DENIED)) == 403
    assert errors.http_status(RestException({"error_code": "UNAUTHENTICATED", "message": "who?"})) == 401
    assert errors.http_status(ValueError("no response at all")) is None
    # mlflow's wrapper of a refused connection carries the default INTERNAL_ERROR: that is no 500.
    assert errors.http_status(_mlflow_transport_failure()) is None


def test_transport_failure_is_found_in_the_chain():
    assert isinstance(errors.transport_failure(_mlflow_transport_failure()), requests.ConnectionError)
    assert errors.transport_failure(MlflowException("bad param", error_code=INVALID_PARAMETER_VALUE)) is None


def test_tracking_error_by_status_and_cause(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    refused = errors.tracking_error(MlflowException("any text at all", error_code=UNAUTHENTICATED))
    assert isinstance(refused, errors.TrackingAuthError) and "HTTP 401, none were given" in refused.one_line()
    down = errors.tracking_error(_mlflow_transport_failure())
    assert isinstance(down, errors.TrackingUnreachableError) and "ConnectionError" in down.one_line()
    # A server that answered every retry with 5xx is up: its store failed (e.g. a missing S3 bucket).
    failing = errors.tracking_error(_mlflow_retries_ran_out())
    assert isinstance(failing, errors.TrackingServerError)
    assert "http://127.0.0.1:5999 kept answering with server errors" in failing.one_line()
    # The wording of a message never decides: a 401 in the text of another error is not an auth error.
    assert errors.tracking_error(RuntimeError("failed with error code 401")) is None
    assert errors.tracking_error(MlflowException("bad", error_code=INVALID_PARAMETER_VALUE)) is None


def test_safe_url_drops_credentials_and_signed_queries():
    assert errors.safe_url("http://alice:pw@[::1]:5000/x?sig=SECRET#f") == "http://[::1]:5000/x"
    assert errors.safe_url("https://cdn.example/file?X-Amz-Signature=abc") == "https://cdn.example/file"
    assert errors.safe_url("sqlite:///mlflow.db") == "sqlite:///mlflow.db"


def test_tracking_errors_never_carry_credentials_from_the_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cret-pass@127.0.0.1:5999/mlflow")
    for exc in (MlflowException("x", error_code=UNAUTHENTICATED), _mlflow_transport_failure()):
        line = errors.tracking_error(exc).one_line()
        assert "s3cret-pass" not in line and "alice" not in line and "http://127.0.0.1:5999/mlflow" in line
