"""What a person checks on a predict output folder: the overlay shows masks, and says RANDOM WEIGHTS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sam3ops.predict.viz import BANNER_RGB


def banner_rows(picture: np.ndarray) -> int:
    """How many rows from the top are the random-weights banner: only banner red, white text and the
    blends between them (anti-aliased letters: red rising to 255, green = blue), a third of it red."""
    rgb = picture[..., :3].astype(int)
    red = np.abs(rgb - BANNER_RGB).sum(axis=-1) < 30
    reddish = (rgb[..., 0] >= BANNER_RGB[0] - 5) & (rgb[..., 0] >= rgb[..., 1])
    blend = reddish & (np.abs(rgb[..., 1] - rgb[..., 2]) <= 12)
    banner = (blend.mean(axis=1) > 0.97) & (red.mean(axis=1) > 0.3)
    rows = 0
    while rows < len(banner) and banner[rows]:
        rows += 1
    return rows


def has_banner_text(picture: np.ndarray, rows: int) -> bool:
    """White text pixels inside the banner's rows."""
    return bool((picture[:rows, :, :3] > 230).all(axis=-1).sum() > 50)


def tinted_mask_pixels(folder: Path, photo: Path) -> int:
    """Pixels below the banner that ``masks.png`` marks as an instance and the overlay tints (differ
    from the photo by more than JPEG-free rounding could)."""
    overlay = np.asarray(Image.open(folder / "overlay.png").convert("RGB")).astype(int)
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    labels = np.asarray(Image.open(folder / "masks.png"))
    below = np.zeros(labels.shape, bool)
    below[banner_rows(overlay):] = True
    changed = np.abs(overlay - original).sum(axis=-1) > 20
    return int((changed & (labels > 0) & below).sum())


def assert_overlay_shows_masks_and_banner(folder: Path, photo: Path, *, random_weights: bool = True) -> None:
    """The overlay PNG of ``folder`` tints its masks over ``photo``, and carries the banner iff random."""
    overlay = np.asarray(Image.open(folder / "overlay.png").convert("RGB"))
    tinted = tinted_mask_pixels(folder, photo)
    assert tinted > 0.01 * overlay.shape[0] * overlay.shape[1], f"{folder}: only {tinted} tinted mask pixels"
    rows = banner_rows(overlay)
    if random_weights:
        assert rows >= 10 and has_banner_text(overlay, rows), f"{folder}: no RANDOM WEIGHTS banner"
    else:
        assert rows == 0, f"{folder}: a banner on real weights"
