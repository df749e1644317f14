"""What the command modules share: defaults read from the library's torch-free config modules, and
option helpers.

A command's defaults are the library's own (the config dataclasses' field defaults and the
constants beside them), so the CLI, the MLproject file and the library cannot disagree.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import click

# The choices of `init --preset` and `download --include`: sam3ops.weights.presets.PRESETS and the keys of
# sam3ops.weights.hub.INCLUDE_PATTERNS, repeated here because those modules are not torch-free (a test
# keeps them equal).
PRESETS = ("tiny", "full")
INCLUDES = ("transformers", "pt", "all")
DEFAULT_REPO = "facebook/sam3"


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
