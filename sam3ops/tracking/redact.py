"""Keep secrets (the Hugging Face token) out of every log line, tag, param and error message.

Secrets are registered once at start-up; :func:`redact` replaces them anywhere in a string and
:class:`RedactingFilter` does the same for every record that reaches a logging handler.
"""

from __future__ import annotations

import logging
import os

_SECRETS: set[str] = set()
MASK = "***"


def register(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` hides it. Short strings are ignored."""
    if secret and len(secret) >= 8:
        _SECRETS.add(secret)


def register_environment() -> None:
    """Register the tokens huggingface_hub may use: ``HF_TOKEN`` and the stored login."""
    register(os.environ.get("HF_TOKEN"))
    register(os.environ.get("HUGGING_FACE_HUB_TOKEN"))
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
