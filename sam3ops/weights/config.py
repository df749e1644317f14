"""The weights stage's defaults and choices: the hub repo, where weights go, what a download
includes, the random presets. Plain values, no imports: the CLI's ``--help`` reads them cheaply."""

DEFAULT_REPO = "facebook/sam3"
DEFAULT_OUTPUT = "weights/sam3"  # where `sam3ops download` puts the weights, and where later stages look
PRESETS = ("tiny", "full")  # `sam3ops init`: the architecture at a few MB, or the real 840 M-parameter config


def preset_folder(preset: str) -> str:
    """Where ``sam3ops init --output auto`` writes a preset (``weights/sam3-<preset>``)."""
    return f"weights/sam3-{preset}"
INCLUDE_PATTERNS: dict[str, list[str] | None] = {
    # config, processor and tokenizer files (json, merges.txt) and the safetensors weights
    "transformers": ["*.json", "*.txt", "*.safetensors"],
    # plus Meta's original checkpoint
    "pt": ["*.json", "*.txt", "*.safetensors", "*.pt"],
    "all": None,
}
