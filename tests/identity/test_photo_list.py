"""The identity file's photo list: every photo's name and face descriptor, checked on reading and writing,
with files from before several photos (one `face.descriptor`, a `photo` name or none) still read."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from anybody.errors import IdentityError
from anybody.identity import Identity
from anybody.identity.file import content_checksum


def _identity(photos: int = 3) -> Identity:
    descriptors = torch.randn(photos, 128)
    return Identity(name="alice", encoder_embeddings={"text_encoder": torch.randn(2, 32)},
                    face_descriptor=descriptors.mean(dim=0), face_descriptors=descriptors,
                    metadata={"method": "celeb-basis", "photo": "me1.jpg",
                              "photos": [f"me{index + 1}.jpg" for index in range(photos)]})


def test_every_photo_and_its_descriptor_round_trip(tmp_path):
    original = _identity()
    loaded = Identity.load(original.save(tmp_path / "alice.safetensors"))
    assert loaded.photos == ["me1.jpg", "me2.jpg", "me3.jpg"]
    assert torch.equal(loaded.face_descriptors, original.face_descriptors)
    assert torch.equal(loaded.face_descriptor, original.face_descriptor)


def _write(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], version: str = "2") -> None:
    metadata = {"format": "anybody-identity", "format_version": version, "name": "alice", **metadata}
    if version == "2":
        metadata["sha256"] = content_checksum(tensors, metadata)
    save_file(tensors, str(path), metadata)


@pytest.mark.parametrize("version", ["1", "2"])
def test_files_from_before_several_photos_still_read(tmp_path, version):
    path = tmp_path / "old.safetensors"
    _write(path, {"text_encoder.embeddings": torch.randn(2, 32), "face.descriptor": torch.randn(128)},
           {"photo": "me.jpg"}, version)
    old = Identity.load(path)
    assert old.photos == ["me.jpg"] and old.face_descriptors is None and old.face_descriptor.shape == (128,)
    _write(path, {"text_encoder.embeddings": torch.randn(2, 32)}, {}, version)
    assert Identity.load(path).photos == []


@pytest.mark.parametrize(("change", "message"), [
    ({"photos": json.dumps(["me1.jpg", "me2.jpg"])}, "has a damaged photo list"),
    ({"photos": "me1.jpg"}, "has a damaged photo list"),
    ({"photos": json.dumps([1, 2, 3])}, "has a damaged photo list"),
    ({"tensors": {"face.descriptors.5": torch.randn(128)}}, "not numbered 0 to 3"),
    ({"tensors": {"face.descriptors.2": torch.randn(64)}}, "face descriptors of different widths"),
    ({"drop": "photos"}, "has per-photo descriptors but no photo list"),
])
def test_a_photo_list_that_does_not_match_its_descriptors_is_refused(tmp_path, change, message):
    """Crafted files with a valid checksum (a damaged one is refused by the checksum already)."""
    identity = _identity()
    tensors = {"text_encoder.embeddings": identity.embeddings, "face.descriptor": identity.face_descriptor,
               **{f"face.descriptors.{index}": row for index, row in enumerate(identity.face_descriptors)},
               **change.get("tensors", {})}
    metadata = {"photos": json.dumps(identity.photos), **{k: v for k, v in change.items() if k == "photos"}}
    metadata.pop(change.get("drop", ""), None)
    path = tmp_path / "crafted.safetensors"
    _write(path, tensors, metadata)
    with pytest.raises(IdentityError, match=message):
        Identity.load(path)
