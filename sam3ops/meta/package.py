"""Meta's ``sam3`` package: imported on demand, built on any device, at full or tiny size.

Meta's builder assumes CUDA in three places (a ``torch.zeros(device="cuda")`` when the sine position
encoding precomputes its cache, ``device="cuda"`` for the decoder's coordinate cache, and a
``pin_memory()`` in the geometry encoder). :func:`cpu_shims` redirects exactly those three while
it is active and only where CUDA is absent, so the reference runs unchanged on a GPU and at all on
a CPU. Nothing else of Meta's code is touched.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from sam3ops.errors import ServingError

INSTALL_HINT = ("install Meta's package with `pip install -e '.[meta]'` and then "
                "`pip install --no-deps sam3==0.1.4` (see the README's section on Meta's checkpoints); for a "
                "registered version, `pip install --no-deps -r requirements-no-deps.txt` of that model")


BPE_ENV = "SAM3_BPE_PATH"


class MetaPackageError(ServingError):
    """Meta's ``sam3`` package (or one of its runtime needs) is not installed."""

    hint = INSTALL_HINT


def require_package() -> None:
    """Raise :class:`MetaPackageError` unless ``sam3`` and the modules its image model imports are here."""
    missing = [name for name in ("sam3", "einops", "iopath", "timm", "ftfy")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise MetaPackageError(f"Meta's sam3 package cannot be used here: missing {', '.join(missing)}")


def bpe_path() -> str:
    """CLIP's BPE vocabulary for Meta's tokenizer: ``SAM3_BPE_PATH`` where set (a GPU host that carries
    the file), else open_clip's copy (Meta's wheel omits the file; open_clip ships the same one)."""
    if os.environ.get(BPE_ENV):
        return os.environ[BPE_ENV]
    from open_clip.tokenizer import default_bpe

    return default_bpe()


class _CudaFreeTorch:
    """``torch`` as one Meta module sees it: ``zeros(device="cuda")`` lands on the CPU."""

    def __init__(self, torch_module):
        self._torch = torch_module

    def __getattr__(self, name):
        return getattr(self._torch, name)

    def zeros(self, *args, device=None, **kwargs):
        return self._torch.zeros(*args, device=_cpu_if_cuda(device), **kwargs)

    def tensor(self, *args, **kwargs):
        # The geometry encoder pins a freshly made host tensor before copying it to the boxes'
        # device; without a GPU there is nothing to pin for.
        made = self._torch.tensor(*args, **kwargs)
        made.pin_memory = lambda: made
        return made


def _cpu_if_cuda(device):
    return "cpu" if device is not None and str(device).startswith("cuda") else device


@contextlib.contextmanager
def cpu_shims() -> Iterator[None]:
    """Let Meta's image model build and run without CUDA (a no-op where CUDA is available)."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    from sam3.model import decoder, geometry_encoders, position_encoding

    saved_coords = decoder.TransformerDecoder.__dict__["_get_coords"]  # a staticmethod (H, W, device)

    def coords_on_cpu(height, width, device):
        return saved_coords.__func__(height, width, _cpu_if_cuda(device))

    shim = _CudaFreeTorch(torch)
    saved = (position_encoding.torch, geometry_encoders.torch)
    position_encoding.torch = geometry_encoders.torch = shim
    decoder.TransformerDecoder._get_coords = staticmethod(coords_on_cpu)
    try:
        yield
    finally:
        position_encoding.torch, geometry_encoders.torch = saved
        decoder.TransformerDecoder._get_coords = saved_coords


def _fill_uninitialised(model) -> None:
    """Give the two parameters Meta's text encoder leaves as ``torch.empty`` a seeded value.

    ``positional_embedding`` and ``text_projection`` are meant to come from a checkpoint; left
    alone they hold whatever memory held (NaN at times), so a random model would not be random
    in a repeatable way. open_clip's initialisation (which Meta's class follows) is used.
    """
    import torch

    encoder = model.backbone.language_backbone.encoder
    with torch.no_grad():
        torch.nn.init.normal_(encoder.positional_embedding, std=0.01)
        if isinstance(encoder.text_projection, torch.nn.Parameter):
            torch.nn.init.normal_(encoder.text_projection, std=encoder.width ** -0.5)


def build_image_model(*, checkpoint: Path | None = None, device: str = "cpu", size: str = "full", seed: int = 0):
    """Meta's SAM3 image model in eval mode on ``device``: random weights, or ``checkpoint``'s.

    Args:
        checkpoint: a ``sam3.pt`` loaded by Meta's own loader (``torch.load(weights_only=True)``,
            ``detector.*`` keys, ``strict=False``); None keeps the random initialisation.
        size: ``full`` (Meta's builder, the released architecture) or ``tiny`` (the same classes
            at the sizes of this project's tiny preset, :mod:`sam3ops.meta.tiny`).
        seed: seeds the random initialisation: the same seed gives the same weights.

    Raises:
        MetaPackageError: Meta's package is not installed.
    """
    import torch

    require_package()
    torch.manual_seed(seed)
    with cpu_shims():
        if size == "tiny":
            from sam3ops.meta.tiny import build_tiny_image_model

            model = build_tiny_image_model(bpe_path())
            if checkpoint is not None:
                from sam3.model_builder import _load_checkpoint

                _load_checkpoint(model, str(checkpoint))
        else:
            from sam3.model_builder import build_sam3_image_model

            model = build_sam3_image_model(bpe_path=bpe_path(), device="cpu", eval_mode=True,
                                           checkpoint_path=str(checkpoint) if checkpoint else None,
                                           load_from_HF=False)
    if checkpoint is None:
        _fill_uninitialised(model)
    return model.to(device).eval()
