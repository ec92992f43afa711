"""Pictures that show a user exactly what will be learned from a photo, before minutes of learning.

Two PNG files: `<stem>-faces.png`, the photo with every detected face boxed and numbered by the index
`--face` takes (the chosen one in another colour, with its five landmarks and its size in pixels); and
`<stem>-aligned.png`, the aligned face (the diffusion target) beside the recognizer's crop.
If the face cannot be used (too small, index out of range), the numbered photo is still written, and the
error names it, so the user can pick the right index.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from anybody.errors import PhotoError
from anybody.face.alignment import TEMPLATE_SIZE, align_face
from anybody.face.detection import Face, choose_face, find_faces
from anybody.face.encoders import get_face_encoder
from anybody.face.photo import PhotoSource, load_photo

PREVIEW_SIDE = 1600  # the annotated photo is shrunk to this longest side (a 50-megapixel PNG helps nobody)
_OTHER = (255, 200, 0)
_CHOSEN = (0, 220, 80)
_LANDMARK = (255, 40, 40)


def write_face_preview(photo: PhotoSource, out_dir: str | os.PathLike[str], face_index: int | None = None,
                       detector: str = "hog", stem: str | None = None) -> list[Path]:
    """Write the annotated photo and the aligned/recognizer pair as PNGs in `out_dir`; return their paths."""
    image = load_photo(photo)
    stem = stem or (Path(photo).stem if isinstance(photo, (str, os.PathLike)) else "photo")
    folder = Path(out_dir)
    faces = find_faces(image, detector=detector)
    faces_path = folder / f"{stem}-faces.png"
    try:
        face = choose_face(faces, face_index)
    except PhotoError as error:
        if faces:
            _save(annotate(image, faces, None), faces_path)
            raise PhotoError(error.problem, f"{error.fix}; the numbered faces are in {faces_path}") from error
        raise
    _save(annotate(image, faces, faces.index(face)), faces_path)
    encoder = get_face_encoder("dlib")
    aligned_path = folder / f"{stem}-aligned.png"
    _save(side_by_side(align_face(image, face, TEMPLATE_SIZE), encoder.crop(image, face)), aligned_path)
    return [faces_path, aligned_path]


def annotate(image: Image.Image, faces: list[Face], chosen: int | None) -> Image.Image:
    """The photo (shrunk to PREVIEW_SIDE at most) with numbered boxes, the chosen face highlighted."""
    scale = min(1.0, PREVIEW_SIDE / max(image.size))
    canvas = image.convert("RGB")
    if scale < 1.0:
        size = (round(image.width * scale), round(image.height * scale))
        canvas = canvas.resize(size, Image.Resampling.LANCZOS)
    else:
        canvas = canvas.copy()
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 400))
    font = _font(max(12, round(max(canvas.size) / 40)))
    order = [i for i in range(len(faces)) if i != chosen] + ([chosen] if chosen is not None else [])
    for index in order:  # the chosen face last, on top
        face = faces[index]
        colour = _CHOSEN if index == chosen else _OTHER
        left, top, right, bottom = (value * scale for value in face.box)
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
        label = f"{index}: {face.size} px" if index == chosen else str(index)
        _label(draw, (left, top), label, colour, font)
        if index == chosen:
            radius = max(2, line)
            for x, y in face.landmarks * scale:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=_LANDMARK)
    return canvas


def side_by_side(aligned: Image.Image, crop: Image.Image) -> Image.Image:
    """The aligned face and the recognizer's crop (scaled to the same height), captioned."""
    height, original = aligned.height, crop.size
    width = round(crop.width * height / crop.height)
    crop = crop.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    sheet = Image.new("RGB", (aligned.width + crop.width, height), (255, 255, 255))
    sheet.paste(aligned.convert("RGB"), (0, 0))
    sheet.paste(crop, (aligned.width, 0))
    draw = ImageDraw.Draw(sheet)
    font = _font(max(12, height // 32))
    _label(draw, (0, 0), f"learned: aligned {aligned.width} px", _CHOSEN, font)
    _label(draw, (aligned.width, 0), f"recognizer: {original[0]} x {original[1]} px", _OTHER, font)
    return sheet


def _label(draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour: tuple[int, int, int],
           font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """Text on a filled box above `at` (or below it when there is no room above)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 6, bottom - top + 6
    x, y = at[0], at[1] - height if at[1] - height >= 0 else at[1]
    draw.rectangle((x, y, x + width, y + height), fill=colour)
    draw.text((x + 3 - left, y + 3 - top), text, fill=(0, 0, 0), font=font)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _save(image: Image.Image, path: Path) -> None:
    # Imported here: storage pulls in torch, which `anybody face` does not otherwise need.
    from anybody.storage import write_with

    write_with(path, lambda stream: image.save(stream, format="PNG"))
