"""The face thumbnail of an identity file: kept in the library's file (checked and sealed like every other
field), read back as a picture, and never carried into an export for another tool."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from anybody.errors import IdentityError
from anybody.identity import Identity
from anybody.identity.contents import FORMAT_VERSION, THUMBNAIL, THUMBNAIL_SIDE
from anybody.identity.file import content_checksum, face_thumbnail
from anybody.identity.formats import FORMATS, export_file_name
from anybody.identity.writers import export_identity


def _noise_thumbnail(seed: int = 3) -> torch.Tensor:
    """Random bytes: a run of them found in a file can only have come from the thumbnail."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3), dtype=torch.uint8, generator=generator)


def _identity(widths: tuple[int, ...] = (32,)) -> Identity:
    encoders = dict(zip(("text_encoder", "text_encoder_2"), widths))
    return Identity(name="alice", encoder_embeddings={key: torch.randn(2, width) for key, width in encoders.items()},
                    face_descriptor=torch.randn(128), face_thumbnail=_noise_thumbnail(),
                    metadata={"method": "celeb-basis", "base_model": "tiny",
                              "family": "sdxl" if len(widths) == 2 else "sd1"})


def test_the_thumbnail_round_trips_as_a_picture(tmp_path: Path):
    original = _identity()
    loaded = Identity.load(original.save(tmp_path / "alice.safetensors"))
    assert loaded.metadata["format_version"] == str(FORMAT_VERSION) == "3"
    assert loaded.face_thumbnail.dtype == torch.uint8 and torch.equal(loaded.face_thumbnail, original.face_thumbnail)
    picture = loaded.face_picture()
    assert picture.mode == "RGB" and picture.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    assert picture.getpixel((5, 7)) == tuple(int(value) for value in original.face_thumbnail[7, 5])


def test_a_face_of_any_size_becomes_a_thumbnail_of_the_one_side():
    face = Image.new("RGB", (512, 512), (200, 150, 120))
    thumbnail = face_thumbnail(face)
    assert thumbnail.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3) and thumbnail.dtype == torch.uint8
    assert tuple(int(value) for value in thumbnail[40, 40]) == (200, 150, 120)


def test_files_without_a_thumbnail_read_as_before(tmp_path: Path):
    """Version 2 files (no thumbnail) and imported or mixed identities have none: no picture, no error."""
    tensors = {"text_encoder.embeddings": torch.randn(2, 32)}
    metadata = {"format": "anybody-identity", "format_version": "2", "name": "alice"}
    save_file(tensors, tmp_path / "old.safetensors", {**metadata, "sha256": content_checksum(tensors, metadata)})
    old = Identity.load(tmp_path / "old.safetensors")
    assert old.face_thumbnail is None and old.face_picture() is None


def test_the_checksum_covers_the_thumbnail(tmp_path: Path):
    from safetensors import safe_open

    path = _identity().save(tmp_path / "alice.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        tensors, metadata = {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()  # noqa: SIM118
    tensors[THUMBNAIL][0, 0, 0] ^= 1  # one bit of one pixel
    save_file(tensors, tmp_path / "edited.safetensors", metadata)
    with pytest.raises(IdentityError, match="is damaged: its contents do not match its checksum"):
        Identity.load(tmp_path / "edited.safetensors")


@pytest.mark.parametrize(("thumbnail", "described"), [
    (torch.rand(96, 96, 3), "type F32 and shape (96, 96, 3)"),
    (torch.zeros(96, 96, dtype=torch.uint8), "type U8 and shape (96, 96)"),
    (torch.zeros(96, 96, 4, dtype=torch.uint8), "type U8 and shape (96, 96, 4)"),
    (torch.zeros(96, 64, 3, dtype=torch.uint8), "type U8 and shape (96, 64, 3)"),
    (torch.zeros(8, 8, 3, dtype=torch.uint8), "type U8 and shape (8, 8, 3)"),
    (torch.zeros(1024, 1024, 3, dtype=torch.uint8), "type U8 and shape (1024, 1024, 3)"),
])
def test_a_crafted_thumbnail_is_refused(tmp_path: Path, thumbnail: torch.Tensor, described: str):
    """Files with a valid checksum (anyone can compute one): the reader checks type, shape and size itself."""
    tensors = {"text_encoder.embeddings": torch.randn(2, 32), THUMBNAIL: thumbnail}
    metadata = {"format": "anybody-identity", "format_version": "3", "name": "alice"}
    save_file(tensors, tmp_path / "crafted.safetensors", {**metadata, "sha256": content_checksum(tensors, metadata)})
    with pytest.raises(IdentityError, match=re.escape(f"has a face thumbnail of {described} (anybody writes")):
        Identity.load(tmp_path / "crafted.safetensors")


def test_bytes_are_refused_anywhere_but_the_thumbnail(tmp_path: Path):
    tensors = {"text_encoder.embeddings": torch.randn(2, 32), "face.descriptor": torch.zeros(128, dtype=torch.uint8)}
    metadata = {"format": "anybody-identity", "format_version": "3", "name": "alice"}
    save_file(tensors, tmp_path / "crafted.safetensors", {**metadata, "sha256": content_checksum(tensors, metadata)})
    with pytest.raises(IdentityError, match=r"holds non-finite or non-float values in face\.descriptor"):
        Identity.load(tmp_path / "crafted.safetensors")


@pytest.mark.parametrize("widths", [(32,), (768, 1280)], ids=["sd1", "sdxl"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_no_export_carries_the_face(tmp_path: Path, fmt: str, widths: tuple[int, ...]):
    """Exports are shared with other people and tools: the face stays in the library's own file."""
    identity = Identity.load(_identity(widths).save(tmp_path / "alice.safetensors"))
    target = export_identity(identity, fmt, tmp_path / "export" / export_file_name(identity, fmt))
    written = [target] if target.is_file() else [path for path in target.rglob("*") if path.is_file()]
    assert written
    pixels = identity.face_thumbnail.numpy().tobytes()
    for path in written:
        data = path.read_bytes()
        assert b"thumbnail" not in data
        assert not any(pixels[start:start + 48] in data for start in range(0, len(pixels), 4096))
