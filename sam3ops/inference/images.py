"""Input images: find them (files, folders, globs) and load them as RGB, whatever they were.

Every problem with one file is an :class:`ImageError` with a one-line reason, so a caller can
record it and go on with the next file.
"""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sam3ops.errors import ImageError, UsageError
from sam3ops.inference.options import DEFAULT_MAX_PIXELS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def collect_images(inputs: list[str] | tuple[str, ...]) -> list[Path]:
    """Paths named by ``inputs``: files as given, folders' image files (sorted), glob matches.

    A missing file is kept in the list (loading it then fails with a clear line), so it is
    reported like every other bad input.

    Raises:
        UsageError: no input at all, or nothing matched.
    """
    if not inputs:
        raise UsageError("no images given", hint="pass image files, a folder or a glob such as 'photos/*.jpg'")
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif glob.has_magic(item):
            found.extend(sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file()))
        else:
            found.append(path)
    if not found:
        raise UsageError(f"no images found in {', '.join(inputs)}", hint="check the path or the glob pattern")
    return list(dict.fromkeys(found))


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any PIL mode: 16/32-bit and float grayscale rescaled, alpha flattened on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        if image.mode.startswith("I;16"):
            values = values / 257.0  # full 16-bit range onto 8 bits
        else:  # 32-bit int or float: stretch what is there
            low, high = float(values.min()), float(values.max())
            values = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        return Image.fromarray(values.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGB


def load_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an RGB image with its EXIF orientation applied.

    Raises:
        ImageError: missing, empty, not an image, over ``max_pixels``, or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            # Our own limit below decides; PIL's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{path}: {width}x{height} is {width * height / 1e6:.0f} MP, "
                    f"over the {max_pixels / 1e6:.0f} MP limit",
                    hint="resize it, or raise --max-pixels if the file is trusted",
                )
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise  # ours (the pixel limit above) is already the one line to show; it is also a ValueError
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused as a decompression bomb ({exc})",
                         hint="resize it; an image this size cannot be segmented here") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageError(f"{path}: corrupt or truncated image ({exc})") from None
    return _to_rgb(image)
