"""Keep secrets (the Hugging Face token) out of every log line, tag, param and error message.

Secrets are registered once at start-up; :func:`redact` replaces them anywhere in a string and
:class:`RedactingFilter` does the same for every record that reaches a logging handler.
"""

from __future__ import annotations

import contextlib
import logging
import os

_SECRETS: set[str] = set()
MASK = "***"


def register(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` hides it. Short strings are ignored."""
    if secret and len(secret) >= 8:
        _SECRETS.add(secret)


def clear() -> None:
    """Forget every registered secret (a fresh process's state; the tests start each test from it)."""
    _SECRETS.clear()


def register_environment() -> None:
    """Register the secrets a run may see: the tokens huggingface_hub may use (``HF_TOKEN`` and the
    stored login), the tracking server's (``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``,
    and a password written into ``MLFLOW_TRACKING_URI``) and S3's, where a client holds them."""
    from urllib.parse import urlsplit

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        register(os.environ.get(name))
    with contextlib.suppress(ValueError):
        register(urlsplit(os.environ.get("MLFLOW_TRACKING_URI", "")).password)
    try:
        from huggingface_hub import get_token

        register(get_token())
    except Exception:  # a broken token file must not stop us from redacting the rest
        pass


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    for secret in _SECRETS:
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(record.getMessage())
            record.args = None
        return True
