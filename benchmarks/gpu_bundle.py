"""The files a bare GPU benchmark host lacks, gathered here into one folder that travels with the tree.

    python -m benchmarks.gpu_bundle --out weights/gpu-bundle            # full preset files, wheels, photos
    python -m benchmarks.gpu_bundle --out /tmp/bundle --preset tiny      # the CPU dry run's bundle

What goes (the host has torch, transformers, scikit-image, timm, einops; no mlflow, no network):

- ``preset/``: the preset's ``config.json`` and processor + tokenizer files, made the way
  ``sam3ops init`` makes them but without weights (the host draws random weights from the config);
- ``photos/``: scikit-image's bundled photos as PNG, so every host measures the same pictures;
- ``wheels/``: Meta's ``sam3`` package and the small dependencies its runtime needs that the host
  lacks (``pip download --no-deps``; pycocotools as binary wheels for several Pythons);
- ``bpe_simple_vocab_16e6.txt.gz``: CLIP's vocabulary, which Meta's wheel does not ship;
- ``BUNDLE.json``: what is there, each file's size, and the total, checked against the 64 MiB the
  host accepts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT_BYTES = 64 * 2**20  # what one transfer to the GPU host may carry, the tree aside
# open_clip_torch: where sam3ops.meta finds CLIP's vocabulary (bpe_path()); the file itself travels too.
PURE_WHEELS = ("sam3==0.1.4", "iopath", "ftfy", "portalocker", "wcwidth", "open_clip_torch")
BINARY_WHEELS = ("pycocotools",)
PYTHONS = ("3.10", "3.11", "3.12", "3.13")  # the host's Python is not known here: one wheel for each


def write_preset_files(preset: str, folder: Path) -> list[Path]:
    """``config.json`` and the processor/tokenizer files of ``preset`` in ``folder``, without weights."""
    from sam3ops.weights.presets import build_config, build_processor

    folder.mkdir(parents=True, exist_ok=True)
    config = build_config(preset)
    config.save_pretrained(folder)
    build_processor(config).save_pretrained(folder)
    (folder / "PRESET").write_text(preset + "\n")
    return sorted(folder.iterdir())


def write_photos(folder: Path) -> list[Path]:
    """scikit-image's bundled photos (those the benchmark rotates through) as PNG files in ``folder``."""
    from sam3ops.predict.samples import BUNDLED, write_samples

    folder.mkdir(parents=True, exist_ok=True)
    return write_samples(folder, BUNDLED)


def download_wheels(folder: Path) -> list[Path]:
    """Meta's package and its missing dependencies as wheels (no dependency resolution: the host has the rest)."""
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder)]
    subprocess.run([*pip, *PURE_WHEELS], check=True)
    for python in PYTHONS:
        subprocess.run([*pip, "--only-binary=:all:", "--python-version", python, "--platform",
                        "manylinux_2_17_x86_64", *BINARY_WHEELS], check=True)
    return sorted(folder.glob("*.whl"))


def clip_vocabulary(destination: Path) -> Path | None:
    """open_clip's copy of CLIP's BPE vocabulary (Meta's tokenizer reads it), when open_clip is installed."""
    try:
        import open_clip
    except ImportError:
        return None
    source = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    shutil.copyfile(source, destination)
    return destination


def build_bundle(out: Path, *, preset: str = "full", wheels: bool = True) -> dict:
    """Make the bundle in ``out`` (replacing an earlier one); return its ``BUNDLE.json`` contents.

    Raises:
        SystemExit: the bundle is over :data:`LIMIT_BYTES`.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_preset_files(preset, out / "preset")
    write_photos(out / "photos")
    if wheels:
        download_wheels(out / "wheels")
    clip_vocabulary(out / "bpe_simple_vocab_16e6.txt.gz")
    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    summary = {"preset": preset, "files": files, "total_bytes": sum(files.values()), "limit_bytes": LIMIT_BYTES}
    (out / "BUNDLE.json").write_text(json.dumps(summary, indent=2) + "\n")
    if summary["total_bytes"] > LIMIT_BYTES:
        raise SystemExit(f"bundle {out} is {summary['total_bytes'] / 2**20:.1f} MiB, over the "
                         f"{LIMIT_BYTES / 2**20:.0f} MiB the GPU host accepts: leave something out")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="weights/gpu-bundle")
    parser.add_argument("--preset", default="full", choices=["tiny", "full"])
    parser.add_argument("--no-wheels", action="store_true", help="leave Meta's package out")
    args = parser.parse_args()
    summary = build_bundle(Path(args.out), preset=args.preset, wheels=not args.no_wheels)
    print(f"{args.out}: {len(summary['files'])} files, {summary['total_bytes'] / 2**20:.1f} MiB "
          f"(limit {LIMIT_BYTES / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
