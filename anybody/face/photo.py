"""Read any photo a person has into one upright 8-bit RGB image, or say in one sentence why not.

People hand over phone JPEGs rotated by an EXIF tag, scanned grayscale prints, PNGs with transparency,
CMYK files from print shops, 16-bit exports, the odd animated GIF, or a file that is not an image at all.
Everything downstream (detection, alignment, the recognizer, the diffusion target) wants one thing: an
upright RGB image with 8 bits per channel. This module is the single place that produces it, and every
way a photo can be unusable becomes a `PhotoError` instead of a traceback.

Safety: only common photo formats are opened (no EPS, which would run Ghostscript), the pixel count is
read from the header and refused above `MAX_PIXELS` before anything is decoded, and the whole image is
decoded once so that a truncated file is caught here and not half-way through learning.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from functools import cache
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageCms, ImageOps

from anybody.errors import PhotoError

log = logging.getLogger(__name__)
# Pillow logs some decoding failures (a damaged TIFF) as errors before raising; without a handler Python
# prints them to stderr, ahead of our one-line PhotoError. A NullHandler keeps them off the terminal only
# when the application has configured no logging of its own.
logging.getLogger("PIL").addHandler(logging.NullHandler())

MAX_PIXELS = 64_000_000
"""Largest photo accepted, in pixels: 64 megapixels (about 190 MB once decoded).

Enough for the 50-megapixel mode of phone cameras (8160 x 6144 is 50.1 MP) and for 61 MP full-frame
cameras; a face never needs more. Checked from the file header before decoding, so a small file that
claims enormous dimensions (an "image bomb") is refused without allocating memory.
"""

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".avif")
"""The file names a folder of photos is read for (learn-batch, evaluate): one photo per person."""


def photo_files(folder: Path) -> list[Path]:
    """The photos directly in `folder`, by name, sorted."""
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES)


PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "PPM", "TGA", "JPEG2000", "PSD",
                 "AVIF", "HEIF", "QOI")
"""The Pillow formats a photo may be in (JPEG includes phones' multi-picture MPO; HEIF needs pillow-heif
registered). Exotic and risky decoders (EPS, which runs Ghostscript, WMF, FITS, ...) stay closed."""

PhotoSource = str | os.PathLike | bytes | bytearray | IO[bytes] | Image.Image | np.ndarray
"""What `load_photo` accepts: a path, the file's bytes, a binary file object, a PIL image or an array."""

_WHITE = (255, 255, 255, 255)


def load_photo(photo: PhotoSource) -> Image.Image:
    """Return `photo` as an upright, fully decoded 8-bit RGB image, detached from any file.

    A path, bytes or a binary file object is opened from its header first (format and size checked),
    then decoded completely. A PIL image has its EXIF orientation applied too (as it would from a file).
    A numpy array is (height, width), (height, width, 1), (height, width, 3) or (height, width, 4).
    Transparency is composited on white; 16-bit data is scaled to 8 bits, never clipped.
    Raises `PhotoError` for anything that is not a usable photo.
    """
    if isinstance(photo, np.ndarray):
        return _from_array(photo)
    if isinstance(photo, Image.Image):
        _check_pixels(photo.size, "The photo")
        return _decoded(photo, "The photo")
    if isinstance(photo, (bytes, bytearray)):
        if not photo:
            raise PhotoError("The photo is empty (0 bytes)", "Give the bytes of a JPEG, PNG or WebP image")
        return _open(io.BytesIO(bytes(photo)), "The photo")
    if hasattr(photo, "read"):
        return _open(photo, "The photo")
    if isinstance(photo, (str, os.PathLike)):
        path = Path(photo).expanduser()
        try:
            _check_file(path)
            with path.open("rb") as stream:
                return _open(stream, f"The photo {path}")
        except OSError as error:  # unreadable (permissions, a vanished network drive)
            raise PhotoError(f"The photo {path} cannot be read ({error.strerror or error})",
                             "Check that the file exists and that you may read it") from error
    raise PhotoError(f"A photo cannot be made from a {type(photo).__name__}",
                     "Give a file path, the file's bytes, a PIL image or a numpy array")


def _check_file(path: Path) -> None:
    """The errors a path can have before it is even opened, each with its own fix."""
    if not path.exists():
        raise PhotoError(f"The photo {path} does not exist", "Check the path and the file name")
    if path.is_dir():
        raise PhotoError(f"{path} is a folder, not a photo", "Give the path of one image file inside it")
    if path.stat().st_size == 0:
        raise PhotoError(f"The photo {path} is empty (0 bytes)",
                         "Copy or export the photo again: the file was not written completely")


def _open(stream: IO[bytes], name: str) -> Image.Image:
    """Open from the header only, refuse bombs and unknown formats, then decode everything."""
    with warnings.catch_warnings():
        # Pillow's remarks on odd metadata are noise to a user: a real problem raises below.
        warnings.simplefilter("ignore", UserWarning)
        # Pillow warns above 89 MP, which our own check (lower, and naming the size) refuses anyway;
        # above 179 MP Pillow refuses before we see the size.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream, formats=_registered_formats())
        except Image.DecompressionBombError as error:
            raise _bomb(name, None) from error
        except Image.UnidentifiedImageError as error:
            if _is_heif(stream):
                raise PhotoError(f"{name} is a HEIC/HEIF photo, which needs the pillow-heif package",
                                 "Install it with: pip install pillow-heif (or export the photo as JPEG)"
                                 ) from error
            raise PhotoError(f"{name} is not an image anybody can read",
                             "Use a JPEG, PNG or WebP photo (or GIF, BMP, TIFF, HEIC, AVIF)") from error
        except Exception as error:  # Pillow's plugins raise many types on malformed headers
            raise _damaged(name) from error
        with image:
            _check_pixels(image.size, name)
            return _decoded(image, name)


def _registered_formats() -> list[str]:
    """PHOTO_FORMATS that this Pillow can open (Pillow refuses to be asked for a format it lacks)."""
    Image.init()
    _register_heif()
    return [name for name in PHOTO_FORMATS if name in Image.OPEN]


@cache
def _register_heif() -> None:
    """iPhones save HEIC: readable when the optional pillow-heif package is installed."""
    try:
        import pillow_heif
    except ImportError:
        return
    pillow_heif.register_heif_opener()


def _is_heif(stream: IO[bytes]) -> bool:
    """An ISO media file whose brand is one of HEIF's (what `pillow-heif` would open)."""
    try:
        stream.seek(0)
        head = stream.read(12)
    except (OSError, ValueError):
        return False
    return len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def _check_pixels(size: tuple[int, int], name: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise PhotoError(f"{name} has no pixels ({width} x {height})", "Use a real photo")
    if width * height > MAX_PIXELS:
        raise _bomb(name, size)


def _bomb(name: str, size: tuple[int, int] | None) -> PhotoError:
    limit = f"{MAX_PIXELS / 1e6:.0f} megapixels"
    if size:
        claimed = f" is {size[0]} x {size[1]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels), over"
    else:
        claimed = " claims a size over"
    return PhotoError(f"{name}{claimed} the limit of {limit}",
                      f"Resize it to at most {limit} (for example 6000 x 4000) and try again")


def _damaged(name: str) -> PhotoError:
    return PhotoError(f"{name} is truncated or damaged and cannot be decoded",
                      "Copy or export the photo again from the original")


def _decoded(image: Image.Image, name: str) -> Image.Image:
    """First frame, fully decoded, upright, converted to 8-bit RGB."""
    try:
        _note_frames(image, name)
        image.load()  # forces the full decode: a truncated file fails here, not later
        upright = _upright(image, name)
        return _to_rgb(upright, name)
    except PhotoError:
        raise
    except Exception as error:  # decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        raise _damaged(name) from error


def _note_frames(image: Image.Image, name: str) -> None:
    """Multi-frame files: use the first frame, and say so when the user may not expect it."""
    frames = getattr(image, "n_frames", 1)
    if frames <= 1:
        return
    image.seek(0)
    if image.format in ("MPO", "PSD"):  # a phone JPEG's depth map or preview, a PSD's layers: the first
        log.debug("%s holds %d images (%s); the first one is used", name, frames, image.format)
    elif image.format == "TIFF":
        log.warning("%s has %d pages; only the first page is used", name, frames)
    else:
        log.warning("%s is animated (%d frames); only the first frame is used", name, frames)


def _upright(image: Image.Image, name: str) -> Image.Image:
    """Apply the EXIF orientation, as every photo viewer does; a broken EXIF block is not fatal."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception as error:  # malformed EXIF in an otherwise good image
        log.warning("%s has an unreadable EXIF orientation (%s); it is used as stored", name, error)
        return image


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Every Pillow mode a photo can come in, to 8-bit RGB (a new image, never the input)."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in image.info):
        return _on_white(image.convert("RGBA"))
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _from_array(np.asarray(image))
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    try:
        return image.convert("RGB")  # L, 1, P, YCbCr, HSV, LAB, ...
    except (ValueError, OSError) as error:
        raise PhotoError(f"{name} uses the colour mode {mode}, which anybody cannot convert",
                         "Export the photo as an RGB JPEG or PNG") from error


def _on_white(rgba: Image.Image) -> Image.Image:
    """Transparent parts become white, as they look in most viewers (not black, the stored colour)."""
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when there is one (print CMYK is far from naive 255 - C)."""
    profile = image.info.get("icc_profile")
    if profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            if converted is not None:
                return converted
        except Exception as error:  # a broken profile: fall back to Pillow's plain conversion
            log.debug("The CMYK profile could not be applied (%s); converting without it", error)
    return image.convert("RGB")


def _from_array(array: np.ndarray) -> Image.Image:
    """An array in any common dtype and layout, scaled (not clipped) to 8-bit RGB."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise PhotoError(f"An array of shape {tuple(array.shape)} is not an image",
                         "Give an array of shape (height, width), (height, width, 3) or (height, width, 4)")
    _check_pixels((array.shape[1], array.shape[0]), "The photo")
    pixels = _to_uint8(array)
    if pixels.ndim == 2:
        return Image.fromarray(pixels, "L").convert("RGB")
    if pixels.shape[2] == 4:
        return _on_white(Image.fromarray(np.ascontiguousarray(pixels), "RGBA"))
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit as is; 16-bit divided by 257 (65535 -> 255); wider integers by their range; floats by 0-1."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255 and array.dtype.itemsize > 2:
            return array.astype(np.uint8)  # 8-bit data stored in a wide type (Pillow's mode "I")
        if low >= 0 and high <= 65535:
            return np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
        return _stretch(array.astype(np.float64), low, high)
    if np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float64)
        if not np.isfinite(values).all():
            raise PhotoError("The photo array holds NaN or infinite values", "Give finite pixel values")
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            return np.round(values * 255.0).astype(np.uint8)
        if low >= 0.0 and high <= 255.0:
            return np.round(values).astype(np.uint8)
        return _stretch(values, low, high)
    raise PhotoError(f"An array of type {array.dtype} is not an image", "Give uint8, uint16 or float pixels")


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values outside any usual range: map their own range onto 0-255."""
    span = high - low if high > low else 1.0
    return np.round((values - low) / span * 255.0).astype(np.uint8)
