"""The inputs a benchmark feeds: real photos and real prompts, rotated call after call.

Never one cached buffer, never zeros: scikit-image's bundled photos (a person, a cat, cups, a
rocket, a grayscale street scene) resized to the requested square size, and prompts drawn in turn
from the workspace's prompt sets, so consecutive calls see different images and different text.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from sam3ops.predict.samples import BUNDLED, sample_image

# Used when the workspace's prompt file is not there (a bare GPU host with only the package).
FALLBACK_PROMPTS = ("person", "cat", "dog", "car", "cup", "bicycle", "rocket", "face", "hair", "sky", "floor",
                    "wall", "white mug on a table", "orange tabby cat", "astronaut holding a helmet")


def photo_pool(image_size: int, photos: str | None = None) -> list[Image.Image]:
    """Every bundled photo (or every image in the folder ``photos``), resized to ``image_size`` squared."""
    if photos:
        from sam3ops.inference.images import collect_images, load_image

        pictures = [load_image(path) for path in collect_images([photos])]
    else:
        pictures = [sample_image(name) for name in BUNDLED]
    return [picture.resize((image_size, image_size), Image.Resampling.BILINEAR) for picture in pictures]


def prompt_pool() -> list[str]:
    """Every distinct prompt of the workspace's prompt sets (or a built-in list without them)."""
    from sam3ops.errors import PromptsError
    from sam3ops.inference.prompts import load_prompt_sets

    try:
        sets = load_prompt_sets()
    except PromptsError:
        return list(FALLBACK_PROMPTS)
    return list(dict.fromkeys(prompt for prompts in sets.values() for prompt in prompts))


@dataclass
class Workload:
    """Call ``i`` of a benchmark: ``batch`` photos and ``prompts_per_image`` prompts, rotated by ``i``."""

    photos: list[Image.Image]
    prompts: list[str]
    batch: int
    prompts_per_image: int

    @classmethod
    def build(cls, *, image_size: int, batch: int, prompts_per_image: int, photos: str | None = None) -> Workload:
        prompts = prompt_pool()
        if prompts_per_image > len(prompts):
            from sam3ops.errors import UsageError

            raise UsageError(f"prompts-per-image {prompts_per_image} is more than the {len(prompts)} distinct "
                             "prompts in the prompt sets", hint=f"use at most {len(prompts)}")
        return cls(photo_pool(image_size, photos), prompts, batch, prompts_per_image)

    def images(self, i: int) -> list[Image.Image]:
        """The photos of call ``i`` (consecutive calls start at different photos)."""
        return [self.photos[(i * self.batch + k) % len(self.photos)] for k in range(self.batch)]

    def prompts_for(self, i: int) -> list[str]:
        """The prompts of call ``i`` (distinct within a call; they change from call to call)."""
        n = self.prompts_per_image
        return [self.prompts[(i * n + k) % len(self.prompts)] for k in range(n)]
