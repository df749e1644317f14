"""The torch runtime's speed options, each one a switch the benchmark turns on and off.

Every option keeps the results of the default path (within a precision's rounding; tests check
each against it on the CPU), and the defaults are the plain eager path, so a caller that asks for
nothing gets what it always got. Which ones pay off is a GPU question: the benchmark plan measures
each on and off. Plain values and no torch import, so configs and the CLI validate them cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sam3ops.errors import UsageError

# transformers' names; "auto" leaves the choice to transformers (SDPA where the model supports it).
ATTENTION = ("auto", "eager", "sdpa", "flash_attention_2", "flex_attention")
# torch.compile modes; "off" runs eager. "reduce-overhead" records CUDA graphs for each fixed shape.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILE_PARTS = ("vision", "text", "decoder")


@dataclass(frozen=True)
class TorchOptions:
    """How the torch runtime runs SAM3.

    Args:
        attention: the attention kernels (``attn_implementation`` given to ``from_pretrained``).
        compile: a ``torch.compile`` mode, or ``off``.
        compile_parts: which of the three calls are compiled (the encoders by default: fixed shapes).
        batch_pairs: the decoder runs on the (image, prompt) pairs of all images of a call together
            (in chunks of the segmenter's ``decode_batch``), not image by image.
        gpu_postprocess: one selection of the kept queries for every pair of an image on the
            model's device, masks resized and thresholded there as booleans, one copy to the host.
        native_outputs: decoder outputs stay in the model's precision (bf16 end to end); only the
            kept queries are turned to float32.
        pinned_inputs: photos are copied into pinned host memory and uploaded without blocking.
        decode_batch: (image, prompt) pairs per decoder call.
    """

    attention: str = "auto"
    compile: str = "off"
    compile_parts: tuple[str, ...] = ("vision", "text")
    batch_pairs: bool = False
    gpu_postprocess: bool = False
    native_outputs: bool = False
    pinned_inputs: bool = False
    decode_batch: int = 8

    def __post_init__(self):
        if self.attention not in ATTENTION:
            raise UsageError(f"unknown attention {self.attention!r}", hint=f"choose from: {', '.join(ATTENTION)}")
        if self.compile not in COMPILE_MODES:
            raise UsageError(f"unknown compile mode {self.compile!r}", hint=f"choose from: {', '.join(COMPILE_MODES)}")
        parts = self.compile_parts
        parts = tuple(parts.split(",")) if isinstance(parts, str) else tuple(parts)
        if not parts or any(p not in COMPILE_PARTS for p in parts):
            raise UsageError(f"unknown compile parts {self.compile_parts!r}",
                             hint=f"choose from: {', '.join(COMPILE_PARTS)}")
        object.__setattr__(self, "compile_parts", parts)
        for name in ("batch_pairs", "gpu_postprocess", "native_outputs", "pinned_inputs"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.decode_batch, int) or not 1 <= self.decode_batch <= 4096:
            raise UsageError(f"decode_batch must be a whole number from 1 to 4096, got {self.decode_batch!r}")

    @classmethod
    def parse(cls, values: dict | None) -> TorchOptions:
        """Options from a dict (a config file, a JSON result); unknown keys are refused."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(values) - known):
            raise UsageError(f"unknown torch option {unknown[0]!r}", hint=f"choose from: {', '.join(sorted(known))}")
        for key, value in values.items():  # "true"/"false" from a command line
            if isinstance(value, str) and value.lower() in ("true", "false") and key != "compile":
                values[key] = value.lower() == "true"
            elif key == "decode_batch" and isinstance(value, str) and value.strip().isdigit():
                values[key] = int(value)
        return cls(**values)

    def changed(self) -> dict:
        """The options that differ from the defaults (what names a configuration)."""
        default = TorchOptions()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if getattr(default, k) != v}

    def label(self) -> str:
        """A short name for the options that differ from the defaults, e.g. ``batch_pairs+compile=max-autotune``."""
        parts = []
        for key, value in self.changed().items():
            parts.append(key if value is True else f"{key}={','.join(value) if isinstance(value, list) else value}")
        return "+".join(parts)
