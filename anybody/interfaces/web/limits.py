"""What the web app accepts, in one place: the page's fields are built from these bounds and choices, and the
studio checks every request against them, whoever sent it (the page, `gradio_client`, any HTTP client).

They are tighter than the command line's: on a shared app one request must not hold the single model
worker for hours or fill the disk (`/draw` with 10,000 images did). A refusal names the field as the page
labels it and says what to set it to, in the page's words (never a command-line flag).

Plain constants and checks: importing this loads neither Gradio nor any model library.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anybody.attention.regions import PRESETS, Region, parse_region
from anybody.errors import UsageError

MAX_UPLOAD_MB = 64  # a photo of 64 megapixels (the photo limit) is well under it as JPEG; embeddings are <= 32 MB
MAX_PROMPT_CHARACTERS = 1000  # far past what the text encoders read (77 tokens); bounds the tokenizer's work
MAX_IDENTITIES = 8  # identities drawn together in one picture


@dataclass(frozen=True)
class Bound:
    """A number field of the page: its label, its range and its step (whole numbers unless `whole` is off)."""

    label: str
    minimum: float
    maximum: float
    step: float = 1
    whole: bool = True

    def check(self, value: object) -> int | float:
        """`value` as the number it is (an int for whole-number fields), or a UsageError naming the field."""
        number = _number(value, self.label)
        if not self.minimum <= number <= self.maximum:
            edge, side = (self.maximum, "less") if number > self.maximum else (self.minimum, "more")
            raise UsageError(f"{self.label} must be between {_plain(self.minimum)} and {_plain(self.maximum)} "
                             f"(got {_plain(number)})", f"Set {self.label} to {_plain(edge)} or {side}")
        if self.whole and number != int(number):
            raise UsageError(f"{self.label} must be a whole number (got {_plain(number)})",
                             f"Set {self.label} to {round(number)}")
        if self.whole and self.step > 1 and number % self.step:
            near = min(self.maximum, max(self.minimum, round(number / self.step) * self.step))
            raise UsageError(f"{self.label} must be a multiple of {_plain(self.step)} (got {_plain(number)})",
                             f"Set {self.label} to {_plain(near)}")
        return int(number) if self.whole else float(number)


# Learn
LEARN_STEPS = Bound("Steps", 1, 10_000)  # every method's paper default is 1,000 or less
FACE = Bound("Face to learn", 0, 999)  # then within the faces the photo has (`check_face`)
# Draw
IMAGES = Bound("Images", 1, 16)
DRAW_STEPS = Bound("Steps", 1, 150)
GUIDANCE = Bound("Guidance", 0, 30, step=0.5, whole=False)
SEED = Bound("Seed", 0, 2**32 - 1)
WIDTH = Bound("Width", 0, 2048, step=8)  # 0: the model's own size; otherwise a multiple of 8 (the latents')
HEIGHT = Bound("Height", 0, 2048, step=8)
# Draw into a scene photo, in a pose, each person in a place (Draw's "Scene and control"); Swap
STRENGTH = Bound("Strength", 0.01, 1, step=0.01, whole=False)  # the share of the steps run: more than 0, at most 1
CONTROL_SCALE = Bound("Control scale", 0, 2, step=0.05, whole=False)  # A1111's ControlNet weight runs 0 to 2
MAX_PLACE_CHARACTERS = 100  # a place is a preset's name or four fractions
ANYWHERE = "anywhere"  # an identity without a place of its own: its words act on the whole picture
PLACES = (ANYWHERE, *PRESETS)  # what the page offers for each identity (a box x0,y0,x1,y1 may be typed)
FACE_TO_SWAP = Bound("Face to swap", 0, 999)


def check_choice(value: object, choices: Sequence[str], label: str) -> str:
    """One of the choices the page offers for `label`, or a UsageError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{label} {_shown(value)} is not one of the choices",
                         f"Choose one of: {', '.join(choices)}")
    return value


def check_face(index: int, faces: int, label: str = FACE.label) -> None:
    """A face number the photo has (0 the largest), in the page's words (`label`: the field it is chosen in)."""
    if not 0 <= index < faces:
        valid = "0" if faces == 1 else f"0 to {faces - 1}"
        raise UsageError(f"There is no face {index}: the photo has {faces} face{'s' * (faces != 1)} ({valid})",
                         f"Choose one in {label}")


def check_steps_run(strength: float, steps: int) -> None:
    """Drawing into a photo runs `strength` of the steps: refuse a pair that runs none (e.g. 0.05 of 10)."""
    if int(steps * strength) < 1:
        raise UsageError(f"With {STRENGTH.label} {_plain(strength)} and {_plain(steps)} {DRAW_STEPS.label} not one "
                         f"step is drawn ({STRENGTH.label} is the share of the steps that run)",
                         f"Set {DRAW_STEPS.label} to {math.ceil(1 / strength)} or more, or {STRENGTH.label} higher")


def check_places(places: object, drawn: Sequence[str]) -> dict[str, Region]:
    """{identity: Region} from the page's places ({name: "left", "0,0,0.5,1", ... or "anywhere"}), for the
    identities `drawn` only; anywhere (or nothing) leaves an identity free."""
    if places is None:
        return {}
    if not isinstance(places, dict) or len(places) > MAX_IDENTITIES:
        raise UsageError(f"Places must map at most {MAX_IDENTITIES} identity names to places (got {_shown(places)})",
                         "Choose a place for each identity under Places")
    names = {name.lower() for name in drawn}
    regions: dict[str, Region] = {}
    for name, where in places.items():
        shown = name if isinstance(name, str) and len(name) <= 40 and name.isprintable() else _shown(name)
        label = f"Place of {shown}"
        where = check_text(where, label, maximum=MAX_PLACE_CHARACTERS).strip()
        if not where or where.lower() == ANYWHERE:
            continue
        key = str(name).strip().lower()
        if key not in names:
            raise UsageError(f"There is a place for {shown}, who is not drawn (the identities drawn: "
                             f"{', '.join(sorted(names)) or 'none'})",
                             f"Add them to Identities, or set {label} to {ANYWHERE}")
        if key in regions:
            raise UsageError(f"{key} has two places", "Give one place per identity")
        try:
            regions[key] = parse_region(where, key)
        except UsageError as error:  # its fix is the command line's --region
            raise UsageError(error.problem.replace("The region ", "The place ", 1),
                             f"Choose one of {', '.join(PLACES)} in {label}, or type a box of four fractions from 0 "
                             "to 1 (x0,y0,x1,y1), such as 0,0,0.5,1 for the left half") from None
    return regions


def check_text(value: object, label: str, *, maximum: int = MAX_PROMPT_CHARACTERS) -> str:
    """Text of at most `maximum` characters ("" for none)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError(f"{label} must be text (got {_shown(value)})", f"Type the {label.lower()} as words")
    if len(value) > maximum:
        raise UsageError(f"{label} is {len(value):,} characters long (at most {maximum:,})",
                         f"Shorten the {label.lower()}")
    return value


def check_upload(path: object, label: str, max_mb: float) -> Path:
    """An uploaded file that exists and is within the size limit (Gradio refuses larger uploads itself; this
    holds for every caller of the studio)."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise UsageError(f"No {label} was given", f"Upload a {label}")
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"The {label} {file.name} is not a file that was uploaded", f"Upload the {label} again")
    size = file.stat().st_size
    if size > max_mb * 2**20:
        raise UsageError(f"The {label} {file.name} is {size / 2**20:.1f} MB, over the {max_mb:g} MB limit",
                         f"Upload a smaller {label}")
    return file


def _number(value: object, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{label} must be a number (got {_shown(value)})", f"Set {label} to a number")
    return value


def _shown(value: object) -> str:
    """A value a request sent, short, as Python writes it (control characters escaped)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _plain(number: float) -> str:
    """2048, 4294967295, 7.5: never the exponent form of `:g`."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"
