"""Saving pictures: PNGs that carry how they were made, and a contact sheet to see them at once."""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

from anybody.storage import write_with


def save_png(image: Image.Image, path: Path, text: dict[str, str]) -> Path:
    """Write a PNG atomically with text chunks (A1111's `parameters` chunk among them)."""
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    write_with(path, lambda stream: image.save(stream, format="PNG", pnginfo=info))
    return path


def png_text(prompt: str, negative_prompt: str | None, seed: int, steps: int, guidance: float,
             size: tuple[int, int], model: str, identities: Sequence[str], scheduler: str,
             inputs: Mapping[str, object] | None = None) -> dict[str, str]:
    """The text chunks of a generated image: readable by people, A1111's PNG-info tab and scripts.

    `inputs` is what the drawing started from besides the prompt (`DrawInputs.record()`: the picture, mask
    and control files by name and SHA-256, the strength, the ControlNet and its scale; and each identity's
    region), kept whole in the `anybody` chunk and in A1111's words ("Denoising strength", "ControlNet 0")
    in `parameters`."""
    inputs = dict(inputs or {})
    details = {"prompt": prompt, "negative_prompt": negative_prompt or "", "seed": seed, "steps": steps,
               "guidance_scale": guidance, "width": size[0], "height": size[1], "model": model,
               "identities": list(identities), "scheduler": scheduler, **inputs}
    parameters = (f"{prompt}\nNegative prompt: {negative_prompt or ''}\nSteps: {steps}, Sampler: {scheduler}, "
                  f"CFG scale: {guidance}, Seed: {seed}, Size: {size[0]}x{size[1]}, Model: {model}, "
                  f"Identities: {', '.join(identities)}{_a1111_inputs(inputs)}")
    return {"parameters": parameters, "anybody": json.dumps(details), "prompt": prompt, "seed": str(seed),
            "model": model, "identity": ", ".join(identities)}


def _a1111_inputs(inputs: Mapping[str, object]) -> str:
    """The inputs as A1111's `parameters` line has them (its names; each file with a short hash)."""
    parts = []
    if "strength" in inputs:
        parts.append(f"Denoising strength: {inputs['strength']}")
    for what, label in (("image", "Init image"), ("mask", "Mask")):
        if what in inputs:
            parts.append(f"{label}: {inputs[what]['file']} [{inputs[what]['sha256'][:10]}]")
    if "controlnet" in inputs:
        control = inputs["control"]
        parts.append(f'ControlNet 0: "Module: {inputs.get("control_kind", "none")}, Model: {inputs["controlnet"]}, '
                     f'Weight: {inputs["control_scale"]}, Image: {control["file"]} [{control["sha256"][:10]}]"')
    if "regions" in inputs:  # quoted, as A1111 quotes a value holding commas ("0,0,0.5,1")
        parts.append(f'Regions: "{"; ".join(f"{name}={where}" for name, where in inputs["regions"].items())}"')
    return "".join(f", {part}" for part in parts)


TITLE_PX, CAPTION_PX = 16, 13
"""The contact sheet's letter sizes: the prompt above, each image's seed below it (the cells are 256 px)."""


def contact_sheet(images: Sequence[Image.Image], captions: Sequence[str], title: str = "",
                  cell: int = 256) -> Image.Image:
    """A grid of the images, each captioned, under a title (the prompt)."""
    columns = min(len(images), 4) or 1
    rows = math.ceil(len(images) / columns)
    title_font, caption_font = sheet_font(TITLE_PX), sheet_font(CAPTION_PX)
    caption_height, title_height = CAPTION_PX + 9, TITLE_PX + 14 if title else 0
    sheet = Image.new("RGB", (columns * cell, title_height + rows * (cell + caption_height)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, title_height // 2), _fit(draw, title, columns * cell - 12, title_font), fill="black",
                  font=title_font, anchor="lm")
    for index, (image, caption) in enumerate(zip(images, captions)):
        x = (index % columns) * cell
        y = title_height + (index // columns) * (cell + caption_height)
        thumbnail = ImageOps.contain(image, (cell, cell), Image.Resampling.LANCZOS)
        sheet.paste(thumbnail, (x + (cell - thumbnail.width) // 2, y + (cell - thumbnail.height) // 2))
        draw.text((x + 4, y + cell + caption_height // 2), _fit(draw, caption, cell - 8, caption_font), fill="black",
                  font=caption_font, anchor="lm")
    return sheet


@lru_cache(maxsize=4)
def sheet_font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at `size` px, from Matplotlib's own data (a dependency): a real TrueType font, the same
    on every machine, with the spacing between words that Pillow's small built-in bitmap font loses."""
    import matplotlib  # only its data folder: no plotting library is loaded

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.FreeTypeFont) -> str:
    """The text, shortened with an ellipsis to the longest start that fits the width. The cut is found by
    bisection, so a prompt of thousands of words is measured a dozen times, not once per character."""
    if draw.textlength(text, font=font) <= width:
        return text
    too_long = bisect.bisect_left(range(len(text)), True,
                                  key=lambda length: draw.textlength(text[:length] + "…", font=font) > width)
    return text[: max(too_long - 1, 0)] + "…"
