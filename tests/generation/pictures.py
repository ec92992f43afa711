"""A random picture and a mask whose white is one box in it, written as PNGs: what drawing into a picture takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def picture_and_mask(folder: Path, name: str, size: tuple[int, int], box: tuple[int, int, int, int], seed: int):
    """(picture path, mask path, picture pixels, mask pixels) for a `size` (width, height) picture."""
    width, height = size
    picture = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))
    mask = Image.new("L", picture.size, 0)
    mask.paste(255, box)
    picture.save(folder / f"{name}.png")
    mask.save(folder / "mask.png")
    return folder / f"{name}.png", folder / "mask.png", np.asarray(picture), np.asarray(mask)
