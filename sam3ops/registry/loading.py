"""Loading a registered version as a :class:`Segmenter`: pulled (verified) into a local cache once,
then run on the runtime its files call for."""

from __future__ import annotations

import os
from pathlib import Path

from sam3ops.registry.client import DEFAULT_ALIAS, DEFAULT_NAME, parse_model_uri, resolve_version
from sam3ops.registry.download import pull

CACHE_ENV = "SAM3OPS_MODEL_CACHE"


def default_cache() -> Path:
    """Where :func:`load` keeps pulled versions: ``SAM3OPS_MODEL_CACHE`` or ``~/.cache/sam3ops/models``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sam3ops" / "models")


def load(uri: str = f"models:/{DEFAULT_NAME}@{DEFAULT_ALIAS}", *, device: str | None = None,
         cache_dir: Path | None = None, force: bool = False, **segmenter_kwargs):
    """The :class:`Segmenter` of a registered version, on the runtime its files call for.

    Args:
        uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a local weights folder.
        device: defaults to the device type AOTInductor packages were compiled for, else to
            ``cuda`` where there is a GPU (engines need it), else ``cpu``.
        cache_dir: the version is pulled (verified) into ``cache_dir/NAME/VERSION`` once; later
            loads reuse it. Default :func:`default_cache`.
        force: take a TensorRT engine built for another GPU or TensorRT version, or AOTInductor
            packages compiled with another torch release or for another GPU or CPU, anyway.
        segmenter_kwargs: passed to :meth:`Segmenter.from_dir` (``precision`` defaults to the
            version's own, in fp32 on a CPU).

    Returns:
        The loaded :class:`sam3ops.inference.segmenter.Segmenter`.

    Raises:
        UsageError: a ``models:/`` URI of another form.
        WeightsError: a folder that is not a weights folder.
        RegistryNotFoundError, EngineMismatchError, IntegrityError, PullError: see
            :func:`sam3ops.registry.download.pull`.
        ServingError: AOTInductor packages compiled elsewhere (without ``force``).
    """
    from sam3ops.inference.segmenter import Segmenter
    from sam3ops.registry.pyfunc import runtime_precision

    if not uri.startswith("models:/"):
        return Segmenter.from_dir(Path(uri), device=_device_for(Path(uri), device), force=force, **segmenter_kwargs)
    name, version, alias = parse_model_uri(uri)
    mv = resolve_version(name=name, version=version, alias=alias)
    dest = Path(cache_dir or default_cache()) / name / str(mv.version)
    pull(dest=dest, name=name, version=mv.version, alias=alias, force=force)
    device = _device_for(dest, device)
    segmenter_kwargs.setdefault("precision", runtime_precision(mv.tags.get("precision", "fp32"), device))
    return Segmenter.from_dir(dest, device=device, force=force, **segmenter_kwargs)


def _device_for(folder: Path, device: str | None) -> str:
    """``device``, else the device type of the folder's AOTInductor packages (they run nowhere else),
    else ``cuda`` where there is a GPU, else ``cpu``."""
    from sam3ops.checkpoint.kinds import aoti_sidecar, is_aoti_dir
    from sam3ops.registry.pyfunc import default_device

    if device:
        return device
    if is_aoti_dir(folder) and aoti_sidecar(folder).get("device"):
        return str(aoti_sidecar(folder)["device"])
    return default_device()
