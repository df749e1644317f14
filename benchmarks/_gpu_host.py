"""What the GPU-host scripts share. Imports only torch, transformers and sam3ops: a lent GPU host has
no mlflow, psutil may be missing, and open_clip (the tiny/full presets' tokenizer source) too."""

from __future__ import annotations

from pathlib import Path


def write_random(proc_dir: Path, output: Path, *, preset: str = "full", device: str = "cpu") -> Path:
    """Random weights (seed 0) of ``preset`` built from a carried ``config.json`` and processor files,
    with a manifest; kept when ``output`` already holds them. Returns ``output``."""
    import torch
    from transformers import Sam3Config, Sam3Model

    from sam3ops.checkpoint import manifest as manifest_lib

    proc_dir, output = Path(proc_dir), Path(output)
    if (output / manifest_lib.MANIFEST_NAME).is_file():
        return output
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.device(device):  # initialising on the GPU takes seconds instead of a minute
        model = Sam3Model(Sam3Config.from_pretrained(proc_dir))
    model.save_pretrained(output)
    del model
    for source in proc_dir.iterdir():  # processor and tokenizer files; the config was saved with the model
        if source.is_file() and source.name != "config.json" and source.suffix in (".json", ".txt"):
            (output / source.name).write_bytes(source.read_bytes())
    files = [p.name for p in output.iterdir() if p.is_file()]
    manifest_lib.Manifest(repo_id=f"sam3ops/random-{preset}", revision="seed-0", commit="0" * 40, random=True,
                          preset=preset, seed=0, files=manifest_lib.entries_for(output, files)).write(output)
    return output


def write_random_full(proc_dir: Path, output: Path, *, device: str = "cpu") -> Path:
    """Random full-preset weights: :func:`write_random` of the full preset."""
    return write_random(proc_dir, output, preset="full", device=device)
