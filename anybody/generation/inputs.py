"""What a drawing starts from besides the prompt: a picture to draw into (with a mask, inpainting; without,
img2img) and a control image for a ControlNet (given, or made from a photo's edges).

Everything here is read and checked without torch or diffusers, so that the command line refuses a bad file
or number at once, before the seconds of importing the model libraries; `generate` calls the same
`read_inputs`, so the API and the command line refuse the same things with the same words. Each file is
recorded by name and SHA-256, which the PNGs carry (as AUTOMATIC1111 records its init image and mask).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from anybody.errors import ModelError, PhotoError, UsageError, require_finite
from anybody.face.photo import PhotoSource, load_photo
from anybody.generation import defaults

Task = Literal["text2img", "img2img", "inpaint"]
ControlNetSource = str | os.PathLike[str] | object  # a Hub id, a folder or file, "tiny", or a loaded ControlNetModel
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin", ".pth")
ASPECT_TOLERANCE = 0.01  # a mask within 1% of the picture's shape is resized to it; beyond, it was made for another
NEAR = 8  # mask values this close to black or white are taken as black or white: a JPEG's noise redraws nothing


@dataclass(frozen=True)
class Source:
    """A file a picture was made from, as its PNG records it."""

    name: str  # the file name, or "(in memory)" for a picture handed over as an object
    sha256: str


@dataclass
class DrawInputs:
    """The checked inputs of one drawing: pictures upright in 8-bit RGB (the mask in L, white = redraw, at
    the picture's size) and the settings that go with them."""

    image: Image.Image | None = None
    mask: Image.Image | None = None
    strength: float | None = None  # set whenever `image` is
    control_image: Image.Image | None = None
    control_kind: str | None = None  # how the control image was made from a photo; None: given as it is
    controlnet: ControlNetSource | None = None
    control_scale: float = defaults.CONTROL_SCALE
    sources: dict[str, Source] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was changed to fit (a mask resized), for a WARNING

    @property
    def task(self) -> Task:
        return "inpaint" if self.mask is not None else "img2img" if self.image is not None else "text2img"

    def record(self) -> dict[str, object]:
        """What the PNG text chunks say about these inputs (nothing for a drawing from the prompt alone)."""
        record: dict[str, object] = {f"{what}": {"file": source.name, "sha256": source.sha256}
                                     for what, source in self.sources.items()}
        if self.image is not None:
            record["strength"] = self.strength
        if self.control_image is not None:
            record["controlnet"] = controlnet_name(self.controlnet)
            record["control_scale"] = self.control_scale
            if self.control_kind:
                record["control_kind"] = self.control_kind
        return record


def read_inputs(
    image: PhotoSource | None = None,
    mask: PhotoSource | None = None,
    strength: float | None = None,
    control_image: PhotoSource | None = None,
    control_kind: str | None = None,
    controlnet: ControlNetSource | None = None,
    control_scale: float = defaults.CONTROL_SCALE,
    steps: int = defaults.STEPS,
) -> DrawInputs:
    """Read and check the pictures and settings of a drawing; a `UsageError`, `PhotoError` or `ModelError`
    (one line, with the fix) for anything that could not be drawn."""
    if mask is not None and image is None:
        raise UsageError("A mask was given without the picture to draw into",
                         "Pass --image with the photo the mask was painted on (white = redraw)")
    if strength is not None and image is None:
        raise UsageError("--strength says how much of a given picture is redrawn, but no picture was given",
                         "Pass --image with the picture, or leave out --strength")
    if control_image is None and controlnet is not None:
        raise UsageError("A ControlNet was given without a control image",
                         "Pass --control IMAGE (an edge map, a pose, ...) or --control-from PHOTO")
    if control_image is not None and controlnet is None:
        raise UsageError("A control image needs a ControlNet to read it",
                         "Pass --controlnet with a ControlNet's Hub id, folder or file (or tiny, for a tiny model)")
    if control_kind is not None and control_kind not in defaults.CONTROL_KINDS:
        raise UsageError(f"Unknown control kind {control_kind!r}", f"Use one of: {', '.join(defaults.CONTROL_KINDS)}")
    require_finite(control_scale, "control scale", "--control-scale", defaults.CONTROL_SCALE)
    if controlnet is not None:
        check_controlnet_path(controlnet)
    inputs = DrawInputs(control_kind=control_kind, controlnet=controlnet, control_scale=control_scale)
    if image is not None:
        inputs.strength = _checked_strength(strength, mask is not None, steps)
        inputs.image, inputs.sources["image"] = _read(image, "picture")
    if mask is not None:
        picture, inputs.sources["mask"] = _read(mask, "mask")
        inputs.mask = _checked_mask(picture.convert("L"), inputs.image.size, inputs.sources["mask"].name,
                                    inputs.notes)
    if control_image is not None:
        what = "photo to make the control image from" if control_kind else "control image"
        picture, inputs.sources["control"] = _read(control_image, what)
        if control_kind == "canny":
            picture = canny_edges(picture)
        inputs.control_image = _fitted_control(picture, inputs.image, inputs.notes)
    return inputs


def canny_edges(photo: Image.Image, thresholds: tuple[int, int] = defaults.CANNY_THRESHOLDS) -> Image.Image:
    """The photo's edges, white on black in RGB: what Canny-edge ControlNets were trained to read."""
    import cv2

    edges = cv2.Canny(np.asarray(photo.convert("L")), *thresholds)
    return Image.fromarray(edges).convert("RGB")


def controlnet_name(controlnet: ControlNetSource | None) -> str:
    """The ControlNet as the user named it, or the name a loaded one was made from."""
    if controlnet is None or isinstance(controlnet, (str, os.PathLike)):
        return str(controlnet or "")
    return str(getattr(controlnet, "anybody_source", None) or controlnet.config.get("_name_or_path") or "(in memory)")


def check_controlnet_path(controlnet: ControlNetSource) -> None:
    """A ControlNet named by a path that is not there is refused now, not after the model has loaded."""
    if not isinstance(controlnet, (str, os.PathLike)):
        return
    text = str(controlnet)
    path = Path(text).expanduser()
    looks_like_path = path.suffix.lower() in SINGLE_FILE_SUFFIXES or text.startswith((".", "/", "~"))
    if looks_like_path and not path.exists():
        raise ModelError(f"The ControlNet {text} does not exist",
                         "Check the path, or pass a Hub id such as lllyasviel/sd-controlnet-canny")


def _checked_strength(strength: float | None, masked: bool, steps: int) -> float:
    if strength is None:
        return defaults.INPAINT_STRENGTH if masked else defaults.IMG2IMG_STRENGTH
    if not 0 < strength <= 1:  # also refuses NaN
        raise UsageError(f"The strength must be more than 0 and at most 1 (got {strength})",
                         "Pass --strength 0.75, for example: 1 redraws everything, 0.3 keeps most of the picture")
    if int(steps * strength) < 1:
        raise UsageError(f"With --strength {strength} and {steps} steps not one denoising step is taken "
                         "(the strength is the share of the steps that are run)",
                         f"Pass --steps {math.ceil(1 / strength)} or more, or a higher --strength")
    return float(strength)


def _read(picture: PhotoSource, what: str) -> tuple[Image.Image, Source]:
    """The picture in RGB and its record; the photo reader's refusals, worded for what this picture is."""
    try:
        image = load_photo(picture)
    except PhotoError as error:
        problem = error.problem.replace("The photo", f"The {what}", 1).replace("a photo", f"a {what}", 1)
        raise PhotoError(problem, error.fix) from error
    if isinstance(picture, (str, os.PathLike)):
        path = Path(picture).expanduser()
        return image, Source(path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    return image, Source("(in memory)", hashlib.sha256(image.tobytes()).hexdigest())


def _checked_mask(mask: Image.Image, size: tuple[int, int], name: str, notes: list[str]) -> Image.Image:
    """The mask at the picture's size: resized when it has the picture's shape, refused when it has another
    shape (it was painted on another picture), or when it asks to redraw nothing or everything."""
    if mask.size != size:
        mask_aspect, aspect = mask.width / mask.height, size[0] / size[1]
        if abs(mask_aspect / aspect - 1) > ASPECT_TOLERANCE:
            raise UsageError(
                f"The mask {name} is {mask.width} x {mask.height} px, another shape than the picture "
                f"({size[0]} x {size[1]} px)", "Paint the mask on the picture itself, or give it the picture's size")
        notes.append(f"The mask {name} is {mask.width} x {mask.height} px and the picture {size[0]} x {size[1]} "
                     "px: the mask is resized to the picture")
        mask = mask.resize(size, Image.Resampling.BILINEAR)  # no ringing into the part that is kept
    mask = mask.point(lambda value: 0 if value < NEAR else 255 if value > 255 - NEAR else value)
    low, high = mask.getextrema()
    if high == 0:
        raise UsageError(f"The mask {name} is all black: it asks to redraw nothing",
                         "Paint white where the picture should be redrawn")
    if low == 255:
        raise UsageError(f"The mask {name} is all white: it asks to redraw everything (a transparent background "
                         "counts as white)", "Paint black where the picture must stay, or leave out --mask to redraw "
                         "the whole picture with --strength")
    return mask


def _fitted_control(control: Image.Image, image: Image.Image | None, notes: list[str]) -> Image.Image:
    """The control image at the size of the picture drawn into, whose pixels it must line up with."""
    if image is None or control.size == image.size:
        return control
    notes.append(f"The control image is {control.width} x {control.height} px and the picture {image.width} x "
                 f"{image.height} px: the control image is resized to the picture")
    return control.resize(image.size, Image.Resampling.LANCZOS)
