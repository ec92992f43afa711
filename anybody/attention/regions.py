"""Per-person regions: where in the picture each identity may be drawn, as fractions of the picture.

Two people drawn together tend to blend into one face, because each identity's tokens are free to act
on every pixel. A region ("alice on the left, bob on the right") keeps an identity's tokens out of the
rest of the picture (see `region_masks`). This module is the plain-text side: reading `alice=left` or
`bob=0.5,0,1,1`, checking the numbers, and matching regions to the identities drawn. It imports no model
library, so the command line refuses a bad `--region` at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from anybody.errors import UsageError

FEATHER = 0.1
"""The width of a region's soft edge, as a fraction of the picture's side (at least one pixel of each
attention layer): an identity's attention fades out over it instead of stopping at a hard line, which would
show as a seam where the two sides of the line were drawn from different words."""


@dataclass(frozen=True)
class Region:
    """A box in fractions of the picture: `left` and `right` of its width, `top` and `bottom` of its height
    (0 is the left or top edge, 1 the right or bottom edge)."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)

    def __str__(self) -> str:
        named = next((name for name, region in PRESETS.items() if region == self), None)
        return named or ",".join(f"{value:g}" for value in self.box)


PRESETS = {
    "left": Region(0.0, 0.0, 0.5, 1.0),
    "right": Region(0.5, 0.0, 1.0, 1.0),
    "top": Region(0.0, 0.0, 1.0, 0.5),
    "bottom": Region(0.0, 0.5, 1.0, 1.0),
    "center": Region(0.25, 0.25, 0.75, 0.75),
}

_EXAMPLE = "--region alice=left, or a box of fractions x0,y0,x1,y1 such as --region alice=0,0,0.5,1"
RegionLike = Region | str | Sequence[float]
"""What a region may be given as: a `Region`, a preset name or "x0,y0,x1,y1", or four numbers."""


def parse_region(where: RegionLike, name: str = "the identity") -> Region:
    """A checked `Region` from a preset name, "x0,y0,x1,y1" (fractions of the picture) or four numbers."""
    if isinstance(where, Region):
        numbers = list(where.box)
    elif isinstance(where, str):
        text = where.strip().lower()
        if text in PRESETS:
            return PRESETS[text]
        try:
            numbers = [float(part) for part in text.split(",")]
        except ValueError:
            numbers = []
    else:
        try:
            numbers = [float(value) for value in where]
        except (TypeError, ValueError):
            numbers = []
    shown = where if isinstance(where, str) else ",".join(map(str, numbers)) if numbers else repr(where)
    if len(numbers) != 4:
        raise UsageError(f"The region {shown!r} of {name} is not one of {', '.join(PRESETS)} nor x0,y0,x1,y1",
                         f"Pass {_EXAMPLE}")
    if not all(math.isfinite(value) and 0.0 <= value <= 1.0 for value in numbers):
        raise UsageError(f"The region {shown} of {name} reaches outside the picture: each number is a fraction "
                         "of its width or height, from 0 to 1", "Pass fractions from 0 to 1, for example "
                         f"--region {name}=0,0,0.5,1 for the left half")
    left, top, right, bottom = numbers
    if not (left < right and top < bottom):
        raise UsageError(f"The region {shown} of {name} is empty: x0 must be less than x1 and y0 less than y1",
                         "Give the left, top, right and bottom edges in that order, for example 0.5,0,1,1 for the "
                         "right half")
    return Region(left, top, right, bottom)


def parse_region_options(options: Iterable[str]) -> dict[str, Region]:
    """`--region NAME=WHERE` options, one per identity, as {name: region} (names in lower case)."""
    regions: dict[str, Region] = {}
    for option in options:
        name, equals, where = option.partition("=")
        name = name.strip().lower()
        if not equals or not name:
            raise UsageError(f"--region {option!r} does not say whose region it is",
                             "Pass NAME=WHERE, for example --region alice=left")
        if name in regions:
            raise UsageError(f"{name} has two regions", f"Give one --region per identity (--region {name}=...)")
        regions[name] = parse_region(where, name)
    return regions


def check_regions(regions: Mapping[str, RegionLike] | None, drawn: Sequence[str]) -> dict[str, Region]:
    """{identity name: Region} for the identities drawn; a region for anyone else is refused.

    `drawn` holds the names of the identities in the picture; names are compared in lower case, as
    identity names are stored.
    """
    if not regions:
        return {}
    if not isinstance(regions, Mapping):
        raise UsageError(f"The regions must map identity names to places, not be a {type(regions).__name__}",
                         'Pass regions={"alice": "left", "bob": "right"}')
    names = {name.lower() for name in drawn}
    checked: dict[str, Region] = {}
    for name, where in regions.items():
        key = str(name).strip().lower()
        if key not in names:
            shown = ", ".join(sorted(names)) or "nobody"
            raise UsageError(f"There is a region for {key}, who is not drawn (the identities drawn: {shown})",
                             f"Add {key} to the identities (--identity), or leave out its region")
        if key in checked:
            raise UsageError(f"{key} has two regions", "Give one region per identity")
        checked[key] = parse_region(where, key)
    return checked
