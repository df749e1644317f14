"""Secrets out of every line: the Hugging Face token, the tracking server's and S3's credentials."""

from sam3ops.tracking import redact


def test_environment_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "team-password-1")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "bearer-token-2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:uri-password-3@127.0.0.1:5000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-key-4")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "aws-session-token-5")
    redact.register_environment()
    line = redact.redact("hf_abcdefghijklmnop team-password-1 bearer-token-2 http://alice:uri-password-3@127.0.0.1 "
                         "aws-secret-key-4 aws-session-token-5")
    for secret in ("hf_abcdefghijklmnop", "team-password-1", "bearer-token-2", "uri-password-3", "aws-secret-key-4",
                   "aws-session-token-5"):
        assert secret not in line
    redact.clear()
    assert redact.redact("team-password-1") == "team-password-1"
