"""`load_photo`: every photo a person may have becomes upright 8-bit RGB; everything else a PhotoError."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from anybody.errors import PhotoError
from anybody.face import MAX_PIXELS, find_faces, load_photo
from tests.robustness.bad_files import png_header_only

from .conftest import SAMPLE, centre

# A non-square part of the photo, so a wrong orientation changes the size as well as the face.
CROP = (0, 0, 512, 384)


@pytest.fixture(scope="module")
def portrait(photo: Image.Image) -> Image.Image:
    return photo.crop(CROP)


@pytest.fixture(scope="module")
def face_centre(portrait: Image.Image) -> np.ndarray:
    return centre(find_faces(portrait)[0])


def _saved(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def _assert_face_where_it_was(loaded: Image.Image, expected_centre: np.ndarray, size: tuple[int, int]) -> None:
    assert loaded.mode == "RGB" and loaded.size == size
    faces = find_faces(loaded)
    assert len(faces) == 1
    assert np.abs(centre(faces[0]) - expected_centre).max() < 8


# --- conversions ------------------------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path, portrait, face_centre):
    stored = portrait.transpose(Image.Transpose.ROTATE_90)  # stored turned left, as a phone held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to display
    path = _saved(stored, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    assert Image.open(path).size == (384, 512)
    _assert_face_where_it_was(load_photo(path), face_centre, portrait.size)


def test_grayscale(tmp_path, portrait, face_centre):
    loaded = load_photo(_saved(portrait.convert("L"), tmp_path / "gray.jpg"))
    pixels = np.asarray(loaded).astype(int)
    assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2])
    _assert_face_where_it_was(loaded, face_centre, portrait.size)


def test_rgba_is_composited_on_white(tmp_path, portrait, face_centre):
    rgba = portrait.convert("RGBA")
    alpha = np.full((portrait.height, portrait.width), 255, np.uint8)
    alpha[:, :60] = 0  # a transparent band on the left, far from the face
    rgba.putalpha(Image.fromarray(alpha))
    loaded = load_photo(_saved(rgba, tmp_path / "rgba.png"))
    assert (np.asarray(loaded)[:, :60] == 255).all()
    _assert_face_where_it_was(loaded, face_centre, portrait.size)


def test_grayscale_with_alpha(tmp_path, portrait):
    la = portrait.convert("LA")
    loaded = load_photo(_saved(la, tmp_path / "la.png"))
    assert loaded.mode == "RGB" and loaded.size == portrait.size


def test_palette_with_transparency(tmp_path, portrait, face_centre):
    palette = portrait.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    pixels = np.asarray(palette).copy()
    pixels[:, :60] = 255  # index 255 (unused by the 255 colours) is the transparent one
    transparent = Image.fromarray(pixels, "P")
    transparent.putpalette([*palette.getpalette(), 0, 0, 0])  # a 256th colour (black) to make transparent
    loaded = load_photo(_saved(transparent, tmp_path / "palette.png", transparency=255))
    assert (np.asarray(loaded)[:, :60] == 255).all()
    _assert_face_where_it_was(loaded, face_centre, portrait.size)


def test_cmyk(tmp_path, portrait, face_centre):
    loaded = load_photo(_saved(portrait.convert("CMYK"), tmp_path / "cmyk.jpg", quality=95))
    assert np.abs(np.asarray(loaded, float) - np.asarray(portrait, float)).mean() < 10
    _assert_face_where_it_was(loaded, face_centre, portrait.size)


def test_16_bit_png_is_scaled_not_clipped(tmp_path, portrait, face_centre):
    gray = np.asarray(portrait.convert("L")).astype(np.uint16) * 257  # 0-255 -> 0-65535
    path = _saved(Image.fromarray(gray), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    loaded = load_photo(path)
    assert np.abs(np.asarray(loaded)[..., 0].astype(int) - gray // 257).max() <= 1
    _assert_face_where_it_was(loaded, face_centre, portrait.size)


def test_32_bit_integer_image(portrait):
    wide = Image.fromarray(np.asarray(portrait.convert("L")).astype(np.int32) * 257, "I")
    loaded = load_photo(wide)
    assert np.abs(np.asarray(loaded)[..., 0].astype(int) - np.asarray(portrait.convert("L"))).max() <= 1


def test_animated_gif_gives_the_first_frame_and_a_warning(tmp_path, portrait, face_centre, face_log):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (384, 512, 3), dtype=np.uint8))
    path = tmp_path / "animated.gif"
    portrait.save(path, save_all=True, append_images=[noise], duration=100, loop=0)
    loaded = load_photo(path)
    assert "animated (2 frames)" in face_log.text and "first frame" in face_log.text
    _assert_face_where_it_was(loaded, face_centre, portrait.size)


def test_animated_webp_gives_the_first_frame(tmp_path, portrait, face_log):
    noise = Image.new("RGB", portrait.size, (0, 0, 255))
    path = tmp_path / "animated.webp"
    portrait.save(path, save_all=True, append_images=[noise], duration=100)
    loaded = load_photo(path)
    assert "animated" in face_log.text
    assert np.asarray(loaded)[..., 2].mean() < 200  # not the blue second frame


def test_in_memory_images_and_arrays(portrait):
    assert load_photo(portrait.convert("L")).mode == "RGB"
    assert load_photo(np.asarray(portrait)).size == portrait.size
    assert load_photo(np.asarray(portrait.convert("L"))).size == portrait.size
    as_float = np.asarray(portrait, np.float32) / 255.0
    assert np.abs(np.asarray(load_photo(as_float), int) - np.asarray(portrait, int)).max() <= 1
    as_16_bit = np.asarray(portrait).astype(np.uint16) * 257
    assert np.array_equal(np.asarray(load_photo(as_16_bit)), np.asarray(portrait))
    rgba = np.dstack([np.asarray(portrait), np.zeros(portrait.size[::-1], np.uint8)])
    assert (np.asarray(load_photo(rgba)) == 255).all()  # fully transparent: white
    assert load_photo(SAMPLE.read_bytes()).size == (512, 512)
    with SAMPLE.open("rb") as stream:
        assert load_photo(stream).size == (512, 512)


def test_the_loaded_photo_is_detached_from_the_file(tmp_path, portrait):
    path = _saved(portrait, tmp_path / "photo.png")
    loaded = load_photo(path)
    path.unlink()
    assert loaded.copy().size == portrait.size


# --- errors -------------------------------------------------------------------------------------------------


def test_a_missing_file(tmp_path):
    with pytest.raises(PhotoError, match=r"does not exist"):
        load_photo(tmp_path / "nobody.jpg")


def test_a_folder(tmp_path):
    with pytest.raises(PhotoError, match=r"is a folder"):
        load_photo(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jpg", b"", r"empty \(0 bytes\)"),
        ("notes.jpg", b"not a photo at all\n" * 20, r"not an image"),
        ("drawing.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", r"not an image"),
    ],
    ids=["an empty file", "a text file", "an EPS file is not opened"],
)
def test_files_that_are_not_photos(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PhotoError, match=message):
        load_photo(path)


def test_a_truncated_jpeg(tmp_path):
    data = SAMPLE.read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match=r"truncated or damaged"):
        load_photo(path)


@pytest.mark.parametrize(("side", "said"), [(9000, r"is 9000 x 9000 pixels \(81 megapixels\), over"),
                                           (100_000, r"claims a size over")])  # Pillow's own limit
def test_an_image_bomb_is_refused_from_its_header(tmp_path, side, said):
    assert side * side > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(PhotoError, match=rf"{said} the limit of {MAX_PIXELS // 1_000_000} megapixels"):
        load_photo(path)


def test_a_photo_just_under_the_limit_is_accepted():
    width = 8160  # a phone's 50-megapixel mode: 8160 x 6144
    assert load_photo(np.zeros((6144, width), np.uint8)).size == (width, 6144)


def test_a_bad_array():
    with pytest.raises(PhotoError, match=r"not an image"):
        load_photo(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(PhotoError, match=r"NaN"):
        load_photo(np.full((4, 4), np.nan))


# --- fuzzing ------------------------------------------------------------------------------------------------


def _encoded(format_: str, **options: object) -> bytes:
    stream = io.BytesIO()
    image = Image.open(SAMPLE).resize((24, 24))
    image.save(stream, format=format_, **options)
    return stream.getvalue()


SEEDS = [_encoded("JPEG"), _encoded("PNG"), _encoded("GIF"), _encoded("BMP"), _encoded("TIFF"),
         _encoded("WEBP"), _encoded("PNG", optimize=True)]


def _load_or_photo_error(data: bytes) -> None:
    try:
        image = load_photo(data)
    except PhotoError as error:
        assert str(error).strip()
    else:
        assert isinstance(image, Image.Image) and image.mode == "RGB" and image.width * image.height > 0


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_load_or_raise_photo_error(data):
    _load_or_photo_error(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       st.integers(1, 10_000))
def test_damaged_real_files_load_or_raise_photo_error(seed, changes, length):
    data = bytearray(seed[:length])
    for position, value in changes:
        data[position % len(data)] = value
    _load_or_photo_error(bytes(data))


def test_a_heic_photo_without_pillow_heif_names_the_package():
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pillow-heif is installed: HEIC photos open")
    header = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + b"\0" * 64
    with pytest.raises(PhotoError, match=r"HEIC/HEIF photo.*pip install pillow-heif"):
        load_photo(header)
