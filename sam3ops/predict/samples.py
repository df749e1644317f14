"""Real sample photos for demos, notebooks and tests, from scikit-image's bundled data."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from sam3ops.errors import UsageError

# Photos with things the default prompts name: a person, a cat, cups, a rocket. All ship inside
# the scikit-image wheel (some of its other data sets are fetched from the internet on first use).
DEFAULT_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")
BUNDLED = (*DEFAULT_SAMPLES, "camera")  # camera: a grayscale photo


def sample_image(name: str) -> Image.Image:
    """One of scikit-image's bundled photos as an RGB PIL image."""
    from skimage import data

    if name not in BUNDLED:
        raise UsageError(f"unknown sample image {name!r}", hint=f"choose from: {', '.join(BUNDLED)}")
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def write_samples(folder: Path, names: tuple[str, ...] | list[str] = DEFAULT_SAMPLES) -> list[Path]:
    """Write the named sample photos as PNG files into ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.png"
        sample_image(name).save(path)
        paths.append(path)
    return paths
