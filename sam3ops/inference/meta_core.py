"""Meta's own SAM3 as a runtime: its ``sam3`` package, from a ``sam3.pt`` checkpoint.

What Meta's model does is done by Meta's code: pixels by the transforms of Meta's
``Sam3Processor`` (uint8, resize, mean 0.5 / std 0.5), text by Meta's tokenizer and text
encoder (``backbone.forward_text``, strings in), the image by ``backbone.forward_image``, and
each batch of (image, prompt) pairs by ``Sam3Image.forward_grounding`` with Meta's ``img_ids`` /
``text_ids`` indexing, all through :mod:`sam3ops.meta.reference`, which also restates the raw
outputs in this project's conventions (:class:`~sam3ops.inference.core.Outputs`). The shared
post-processing then scores them as Meta's processor does (sigmoid(logit) x sigmoid(presence),
boxes scaled, masks resized bilinearly and thresholded; it takes the mask sigmoid before resizing
where Meta takes it after, which can move an edge pixel).

Precision is Meta's own way: fp32 weights under ``torch.autocast`` (bf16 as in Meta's video and
tracking predictors; fp16 allowed the same way). The checkpoint must be Meta's layout (a
``sam3.pt``, or a folder holding one): a transformers folder is converted first
(``sam3ops convert --format fp32 --layout meta``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from sam3ops.checkpoint.layout import META_CHECKPOINT
from sam3ops.errors import UsageError, WeightsError, WeightsNotFoundError
from sam3ops.inference.core import Outputs

log = logging.getLogger(__name__)

CHECKPOINT_NAME = META_CHECKPOINT  # what Meta's build_sam3_image_model(checkpoint_path=...) loads
CHECKPOINT_HINT = "give Meta's sam3.pt (or what `sam3ops convert --layout meta` writes)"
CONVERT_HINT = "convert it first: sam3ops convert --input {path} --format fp32 --layout meta --output DIR"
FULL_RESOLUTION = 1008
_PATCH_KEY = "backbone.vision_backbone.trunk.patch_embed.proj.weight"  # its width tells full from tiny


def is_meta_checkpoint_path(path: Path) -> bool:
    """True for a ``.pt``/``.pth`` file, or a folder holding ``sam3.pt`` (Meta's layout)."""
    path = Path(path)
    return (path.is_file() and path.suffix in (".pt", ".pth")) or (path / CHECKPOINT_NAME).is_file()


def is_meta_layout(folder: Path) -> bool:
    """True for a folder in Meta's layout (``sam3.pt``, no transformers config beside it)."""
    from sam3ops.checkpoint.kinds import is_meta_dir

    return is_meta_dir(folder)


def checkpoint_file(path: Path) -> Path:
    """The ``sam3.pt`` of a Meta-layout folder, or ``path`` itself when it is a checkpoint file.

    Raises:
        WeightsNotFoundError: nothing at ``path``.
        UsageError: a folder in transformers layout (it needs converting to Meta's first).
        WeightsError: anything else.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsNotFoundError(f"Meta checkpoint {path} not found",
                                   hint="give a folder holding sam3.pt, or the sam3.pt file itself")
    if is_meta_checkpoint_path(path):
        return path / CHECKPOINT_NAME if path.is_dir() else path
    if path.is_dir() and any(path.glob("*.safetensors")):
        raise UsageError(f"{path} is in transformers layout: Meta's runtime reads Meta's sam3.pt",
                         hint=CONVERT_HINT.format(path=path))
    raise WeightsError(f"{path} is not a Meta SAM3 checkpoint (no {CHECKPOINT_NAME})",
                       hint="give a folder holding sam3.pt, or the sam3.pt file itself")


def check_checkpoint(path: Path) -> Path:
    """The checkpoint file of ``path`` once it is known to be Meta's (its ``detector.*`` image-model
    weights are there; read memory-mapped, cheap even at 3.4 GB) and Meta's package is installed.

    Raises:
        MetaPackageError, WeightsError, UsageError: as :func:`load_meta_core`, before any model is built.
    """
    from sam3ops.meta.package import require_package

    require_package()
    file = checkpoint_file(path)
    _image_keys(file)
    return file


def _image_keys(file: Path) -> dict[str, torch.Tensor]:
    """The image model's entries of ``file`` as Meta's loader picks them (``detector.*``, stripped).

    Memory-mapped: nothing is read beyond the keys and shapes until the model loads it.
    """
    try:
        state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # not a zip-format torch file, or not a state dict of tensors
        raise WeightsError(f"{file} is not a Meta SAM3 checkpoint ({' '.join(str(exc).split())[:160]})",
                           hint=CHECKPOINT_HINT) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    items = state.items() if isinstance(state, dict) else ()
    image = {key.replace("detector.", ""): value for key, value in items if isinstance(key, str) and "detector" in key}
    if _PATCH_KEY not in image:
        raise WeightsError(f"{file} is not a Meta SAM3 checkpoint (no detector.* image-model weights)",
                           hint=CHECKPOINT_HINT)
    return image


def model_size(image_keys: dict[str, torch.Tensor]) -> str:
    """``tiny`` when the checkpoint has the tiny preset's width, else ``full`` (Meta's released sizes)."""
    from sam3ops.meta import tiny

    return "tiny" if image_keys[_PATCH_KEY].shape[0] == tiny.WIDTH else "full"


def _autocast(device: torch.device, precision: str):
    """Meta's way to run at half precision: fp32 weights under autocast; fp32 runs as is."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class MetaVision:
    """Meta's ``backbone.forward_image`` output for a batch, and which of its images a decode reads."""

    def __init__(self, backbone_out: dict, img_ids: torch.Tensor | None = None):
        self.backbone_out = backbone_out
        first = backbone_out["backbone_fpn"][0]
        self.img_ids = img_ids if img_ids is not None else torch.arange(len(first), device=first.device)

    def select(self, index) -> MetaVision:
        """The images at ``index`` (repeats allowed): Meta indexes them itself, by ``img_ids``."""
        index = torch.as_tensor(index, device=self.img_ids.device, dtype=torch.long)
        return MetaVision(self.backbone_out, self.img_ids.index_select(0, index))


class MetaCore:
    """The runtime on Meta's ``Sam3Image``: the Segmenter's three parts, on Meta's own inputs.

    It reads PIL images and prompt strings itself (:meth:`pixel_values`, :meth:`encode_prompts`):
    Meta's transforms and tokenizer, not the transformers processor's.
    """

    def __init__(self, model, *, resolution: int, precision: str = "fp32"):
        from sam3.model.sam3_image_processor import Sam3Processor

        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.dtype, self.precision = torch.float32, precision  # weights stay fp32 (autocast does the rest)
        self.meta_processor = Sam3Processor(model, resolution=resolution, device=str(self.device))
        self.context_length = model.backbone.language_backbone.context_length

    def _run(self):
        return _autocast(self.device, self.precision)

    def pixel_values(self, images: list) -> torch.Tensor:
        """Meta's transforms of each RGB PIL image, stacked (as Meta's ``set_image_batch`` does)."""
        from torchvision.transforms import v2

        transform = self.meta_processor.transform
        return torch.stack([transform(v2.functional.to_image(image).to(self.device)) for image in images])

    def encode_image(self, pixel_values: torch.Tensor) -> MetaVision:
        from sam3ops.meta import reference

        with self._run():
            return MetaVision(reference.encode_image(self.model, pixel_values))

    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta's text features, batch first: ``(N, 2, L, D)`` (features, embeddings) and its ``(N, L)``
        padding mask (True at padding, Meta's convention); one row per prompt, so rows can be cached."""
        from sam3ops.meta import reference

        with self._run():
            out = reference.encode_text(self.model, prompts)
        packed = torch.stack([out["language_features"].transpose(0, 1), out["language_embeds"].transpose(0, 1)], dim=1)
        return packed, out["language_mask"]

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise UsageError("Meta's runtime encodes prompt strings with its own tokenizer, not token ids",
                         hint="call encode_prompts(prompts)")

    def decode(self, vision: MetaVision, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        """Meta's ``forward_grounding`` on pair i = (image ``vision.img_ids[i]``, prompt row i)."""
        from sam3ops.meta import reference

        text_out = {"language_features": text_features[:, 0].transpose(0, 1),  # Meta's: sequence first
                    "language_embeds": text_features[:, 1].transpose(0, 1), "language_mask": attention_mask}
        with self._run():
            return reference.decode(self.model, vision.backbone_out, text_out, image_ids=vision.img_ids.tolist(),
                                    text_ids=list(range(len(text_features))))


def load_meta_core(path: Path, *, device: str = "cpu", precision: str = "fp32") -> MetaCore:
    """Meta's image model from ``path`` (a Meta-layout folder or a ``sam3.pt``) as a :class:`MetaCore`.

    Loaded by Meta's own builder and loader; the tiny preset's sizes are recognised from the
    checkpoint's width. Meta's loader is lenient (``strict=False``); here a checkpoint that leaves
    any of the model's parameters at its random initialisation is refused.

    Raises:
        MetaPackageError: Meta's package is not installed.
        WeightsError: no Meta checkpoint at ``path``, or one that does not fit the model.
        UsageError: a transformers-layout folder, an unknown precision, CUDA without a GPU.
    """
    from sam3ops.inference.device import resolve_device, resolve_precision
    from sam3ops.meta.package import build_image_model, require_package

    require_package()
    torch_device = resolve_device(device)
    resolve_precision(precision)
    file = checkpoint_file(path)
    keys = _image_keys(file)
    size = model_size(keys)
    try:
        model = build_image_model(checkpoint=file, device=str(torch_device), size=size)
    except RuntimeError as exc:  # load_state_dict: shapes that do not fit
        raise WeightsError(f"{file} does not fit Meta's {size} image model ({' '.join(str(exc).split())[:160]})",
                           hint=CHECKPOINT_HINT) from None
    missing = [name for name, _ in model.named_parameters() if name not in keys]
    if missing:
        raise WeightsError(f"{file} lacks {len(missing)} of the {size} image model's parameters "
                           f"(first: {missing[0]})", hint="give Meta's complete sam3.pt")
    log.info("Meta's %s image model from %s on %s (%s)", size, file, torch_device, precision)
    return MetaCore(model, resolution=FULL_RESOLUTION if size == "full" else _tiny_resolution(), precision=precision)


def _tiny_resolution() -> int:
    from sam3ops.meta import tiny

    return tiny.IMAGE


def post_processor():
    """The shared post-processing for Meta's outputs: transformers' ``Sam3ImageProcessor`` (its
    defaults), which scores, resizes and thresholds exactly as Meta's processor does."""
    from transformers import Sam3ImageProcessor

    return Sam3ImageProcessor()
