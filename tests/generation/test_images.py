"""The contact sheet: captions cut to fit, in a number of measurements that grows with the log of their length,
written in a real font with the spaces between words."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from anybody.generation.images import CAPTION_PX, TITLE_PX, _fit, contact_sheet, sheet_font


def test_a_very_long_prompt_is_fitted_to_the_sheet_in_logarithmic_time(monkeypatch):
    prompt = "a photo of alice reading a book in a sunlit library " * 400  # about 21,000 characters
    measured = []
    textlength = ImageDraw.ImageDraw.textlength
    monkeypatch.setattr(ImageDraw.ImageDraw, "textlength",
                        lambda self, text, *args, **kwargs: measured.append(text) or textlength(self, text, *args,
                                                                                               **kwargs))
    sheet = contact_sheet([Image.new("RGB", (64, 64))] * 2, ["seed 1", "seed 2"], title=prompt, cell=128)
    assert sheet.size == (256, TITLE_PX + 14 + 128 + CAPTION_PX + 9)  # a title row, and one row of images
    assert len(measured) <= 3 * (math.log2(len(prompt)) + 2)  # the title once, then bisection; captions fit whole


def test_the_cut_is_the_longest_start_that_fits_with_its_ellipsis():
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = ImageFont.load_default()
    for text in ("short", "a photo of alice and bob on a beach at sunset, highly detailed " * 3, "W" * 500):
        for width in (0, 5, 40, 200):
            fitted = _fit(draw, text, width, font)
            if draw.textlength(text, font=font) <= width:
                assert fitted == text
                continue
            kept = fitted.removesuffix("…")
            assert fitted.endswith("…") and text.startswith(kept)
            assert not kept or draw.textlength(fitted, font=font) <= width
            assert draw.textlength(text[: len(kept) + 1] + "…", font=font) > width  # one more would not fit


def test_the_sheet_s_title_and_captions_keep_the_space_between_words():
    """Pillow's built-in font left a pixel or two between words ("a photoofeileen asan astronaut"); the sheet
    writes in DejaVu Sans at a readable size, where each space is a clear gap, wider than any between letters."""
    title = "a photo of eileen as an astronaut on the moon"
    sheet = contact_sheet([Image.new("RGB", (512, 512), "gray")] * 2, ["seed 42", "seed 43"], title=title)
    assert sheet_font(TITLE_PX).getname() == ("DejaVu Sans", "Book")

    def wide_gaps(band: Image.Image) -> int:
        ink = np.flatnonzero((np.asarray(band.convert("L")) < 128).any(axis=0))
        return int(((np.diff(ink) - 1) >= 5).sum())

    assert wide_gaps(sheet.crop((0, 0, sheet.width, TITLE_PX + 14))) == title.count(" ")
    caption = sheet.crop((0, sheet.height - CAPTION_PX - 9, 256, sheet.height))
    assert wide_gaps(caption) == 1  # "seed 42"
