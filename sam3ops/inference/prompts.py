"""The checks every prompt passes before it reaches the text encoder.

A prompt is one concept for SAM3's text encoder (CLIP BPE, 32 tokens including start and end);
prompts longer than that are truncated by the inference core with a warning, blank ones are refused here.
"""

from __future__ import annotations

from sam3ops.errors import PromptsError


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
