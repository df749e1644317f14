"""Prompts: the checks every prompt passes, and prompt sets (``prompts/default_prompts.json``).

A prompt is one concept for SAM3's text encoder (CLIP BPE, 32 tokens including start and end);
prompts longer than that are truncated by the inference core with a warning, blank ones are refused
here. The prompt-set file maps set names to lists of prompts; predict, the benchmark's workload and
the ``prompts`` command read it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sam3ops.errors import PromptsError
from sam3ops.tracking.store import workspace_root

DEFAULT_FILE = Path("prompts") / "default_prompts.json"


def default_path() -> Path:
    """``prompts/default_prompts.json`` under the workspace root."""
    return workspace_root() / DEFAULT_FILE


def validate_prompt(prompt: object, *, where: str = "prompt") -> str:
    """Return ``prompt`` with surrounding whitespace removed; :class:`PromptsError` if not usable text."""
    if not isinstance(prompt, str):
        raise PromptsError(f"{where} must be text, got {type(prompt).__name__}")
    cleaned = " ".join(prompt.split())
    if not cleaned:
        raise PromptsError(f"{where} is empty or blank", hint="give a short noun phrase such as 'person'")
    return cleaned


def clean_prompts(prompts) -> list[str]:
    """Each prompt validated and whitespace-normalised, duplicates dropped, order kept."""
    return list(dict.fromkeys(validate_prompt(p) for p in prompts))


def load_prompt_sets(path: Path | None = None) -> dict[str, list[str]]:
    """Load and validate a prompt-set file.

    Returns:
        Set name -> prompts, in file order, whitespace normalised.

    Raises:
        PromptsError: unreadable file, invalid JSON, no ``sets`` object, an empty set, a non-text
            or blank prompt, or a prompt repeated within a set. The message names the file and
            the offending set.
    """
    path = Path(path) if path else default_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptsError(f"prompt file {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PromptsError(f"prompt file {path} is not valid JSON ({exc})") from None

    sets = data.get("sets") if isinstance(data, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise PromptsError(f"{path} needs a non-empty object 'sets' mapping set names to lists of prompts")
    loaded: dict[str, list[str]] = {}
    for name, prompts in sets.items():
        if not isinstance(prompts, list) or not prompts:
            raise PromptsError(f"{path}: set {name!r} must be a non-empty list of prompts")
        cleaned = [validate_prompt(p, where=f"{path}: a prompt of set {name!r}") for p in prompts]
        if duplicates := sorted({p for p in cleaned if cleaned.count(p) > 1}):
            raise PromptsError(f"{path}: set {name!r} repeats {', '.join(map(repr, duplicates))}")
        loaded[name] = cleaned
    return loaded


def resolve_prompts(
    prompts: list[str] | tuple[str, ...] = (), set_names: list[str] | tuple[str, ...] = (), *, path: Path | None = None
) -> list[str]:
    """Explicit prompts followed by the prompts of the named sets, validated, first occurrence kept.

    Raises:
        PromptsError: no prompt at all, a blank prompt, or an unknown set name (the message lists
            the known sets).
    """
    resolved = clean_prompts(prompts)
    if set_names:
        sets = load_prompt_sets(path)
        for name in set_names:
            if name not in sets:
                raise PromptsError(f"unknown prompt set {name!r}", hint=f"known sets: {', '.join(sets)}")
            resolved.extend(sets[name])
    if not resolved:
        raise PromptsError("no prompts given", hint="pass --prompt TEXT or --prompt-set NAME")
    return list(dict.fromkeys(resolved))
