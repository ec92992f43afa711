"""The contact sheet: captions cut to fit, in a number of measurements that grows with the log of their length."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

from anybody.generation.images import _fit, contact_sheet


def test_a_very_long_prompt_is_fitted_to_the_sheet_in_logarithmic_time(monkeypatch):
    prompt = "a photo of alice reading a book in a sunlit library " * 400  # about 21,000 characters
    measured = []
    textlength = ImageDraw.ImageDraw.textlength
    monkeypatch.setattr(ImageDraw.ImageDraw, "textlength",
                        lambda self, text, *args, **kwargs: measured.append(text) or textlength(self, text, *args,
                                                                                               **kwargs))
    sheet = contact_sheet([Image.new("RGB", (64, 64))] * 2, ["seed 1", "seed 2"], title=prompt, cell=128)
    assert sheet.size == (256, 28 + 128 + 18)
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
