"""What the command modules share: defaults read from the library's torch-free config modules, and
option helpers.

A command's defaults are the library's own (the config dataclasses' field defaults and the
constants beside them), so the CLI, the MLproject file and the library cannot disagree.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import click

from sam3ops.weights.config import DEFAULT_REPO, INCLUDE_PATTERNS, PRESETS

__all__ = ["DEFAULT_REPO", "INCLUDES", "PRESETS", "TopK", "as_text", "defaults_of", "optional_bool"]

INCLUDES = tuple(INCLUDE_PATTERNS)  # the choices of `download --include`


def defaults_of(config_class: type) -> dict[str, Any]:
    """The field defaults of a config dataclass, by field name (fields without one are left out)."""
    return {f.name: f.default for f in fields(config_class) if f.default is not MISSING}


def as_text(value: Any) -> str:
    """A default as a text option shows it: ``(1, 4)`` -> ``1,4``, ``0.0`` -> ``0``."""
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def optional_bool(name: str, help: str):  # noqa: A002 - click's name for it
    """``--NAME`` alone means true; ``--NAME true|false`` also works (MLproject passes a value)."""
    return click.option(name, type=click.BOOL, default=False, is_flag=False, flag_value=True, show_default=True,
                        metavar="[BOOL]", help=help)


class TopK(click.ParamType):
    """``--top-k``: a whole number, ``off`` (None: the score threshold) or one of ``words`` (kept as text).

    Only the type is checked here; the range (k >= 1) is checked by the library inside the run, so a
    bad k ends a FAILED run with its one-line error, like a bad threshold.
    """

    name = "top_k"

    def __init__(self, *words: str):
        self.words = words
        self.metavar = "|".join(("K", "off", *words))

    def get_metavar(self, param, ctx=None) -> str:  # noqa: ARG002 - click's signature
        return self.metavar

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        text = str(value).strip().lower()
        if text == "off":
            return None
        if text in self.words:
            return text
        try:
            return int(text)
        except ValueError:
            self.fail(f"{value!r} is not a whole number or one of: {', '.join(('off', *self.words))}", param, ctx)
