import json
import math

import pytest
import torch
from safetensors.torch import save_file

from anybody.errors import IdentityError
from anybody.identity import Identity, identity_path, library_names


def _identity(name: str = "alice", width: int = 32) -> Identity:
    return Identity(
        name=name,
        encoder_embeddings={"text_encoder": torch.randn(2, width)},
        encoder_coefficients={"text_encoder": torch.nn.functional.normalize(torch.randn(2, 12), dim=-1)},
        face_descriptor=torch.randn(128),
        metadata={"method": "celeb-basis", "base_model": "tiny", "training": {"steps": 5}},
    )


def test_an_identity_round_trips_through_the_library(library):
    original = _identity()
    path = original.save(library=library)
    assert path == identity_path("alice", library) and library_names(library) == ["alice"]
    loaded = Identity.load("alice", library)
    assert loaded.name == "alice" and loaded.method == "celeb-basis" and loaded.base_model == "tiny"
    assert torch.equal(loaded.embeddings, original.embeddings)
    assert torch.equal(loaded.coefficients, original.coefficients)
    assert loaded.metadata["training"] == {"steps": 5}
    assert Identity.load(path).name == "alice"


def test_an_unknown_name_lists_the_known_ones(library):
    _identity("alice").save(library=library)
    _identity("bob").save(library=library)
    with pytest.raises(IdentityError, match=r"known: alice, bob"):
        Identity.load("carol", library)


def test_damaged_files_are_refused(tmp_path):
    path = _identity().save(tmp_path / "alice.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(IdentityError, match="not a readable identity file"):
        Identity.load(tmp_path / "cut.safetensors")
    save_file({"emb_params": torch.randn(2, 32)}, tmp_path / "other.safetensors")
    with pytest.raises(IdentityError, match="not an anybody identity file"):
        Identity.load(tmp_path / "other.safetensors")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_values_are_refused_on_save_and_on_load(tmp_path, bad):
    identity = _identity()
    identity.encoder_embeddings["text_encoder"][0, 0] = bad
    with pytest.raises(IdentityError, match="non-finite"):
        identity.save(tmp_path / "x.safetensors")
    metadata = {"format": "anybody-identity", "format_version": "1", "name": "alice"}
    save_file({"text_encoder.embeddings": identity.embeddings}, tmp_path / "y.safetensors", metadata)
    with pytest.raises(IdentityError, match="non-finite"):
        Identity.load(tmp_path / "y.safetensors")


def test_a_changed_value_or_field_breaks_the_checksum(tmp_path):
    path = _identity().save(tmp_path / "alice.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        tensors, metadata = {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()  # noqa: SIM118
    assert metadata["format_version"] == "3" and len(metadata["sha256"]) == 64
    edits = {"value": ({**tensors, "face.descriptor": tensors["face.descriptor"] * 1.001}, metadata),
             "field": (tensors, {**metadata, "base_model": "runwayml/stable-diffusion-v1-5"}),
             "no checksum": (tensors, {key: value for key, value in metadata.items() if key != "sha256"})}
    for changed_tensors, changed_metadata in edits.values():
        save_file(changed_tensors, tmp_path / "edited.safetensors", changed_metadata)
        with pytest.raises(IdentityError, match="is damaged: its contents do not match its checksum"):
            Identity.load(tmp_path / "edited.safetensors")


def test_a_version_1_file_without_a_checksum_still_reads(tmp_path):
    metadata = {"format": "anybody-identity", "format_version": "1", "name": "alice", "method": "celeb-basis"}
    embeddings = torch.randn(2, 32)
    save_file({"text_encoder.embeddings": embeddings}, tmp_path / "old.safetensors", metadata)
    loaded = Identity.load(tmp_path / "old.safetensors")
    assert torch.equal(loaded.embeddings, embeddings)
    resaved = Identity.load(loaded.save(tmp_path / "resaved.safetensors"))
    assert resaved.metadata["format_version"] == "3" and torch.equal(resaved.embeddings, embeddings)


def test_a_newer_format_version_asks_for_an_upgrade(tmp_path):
    metadata = {"format": "anybody-identity", "format_version": "99", "name": "alice"}
    save_file({"text_encoder.embeddings": torch.randn(2, 4)}, tmp_path / "new.safetensors", metadata)
    with pytest.raises(IdentityError, match="Upgrade anybody"):
        Identity.load(tmp_path / "new.safetensors")


def test_metadata_values_are_stored_as_strings_or_json(tmp_path):
    path = _identity().save(tmp_path / "alice.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["training"]) == {"steps": 5}
    assert metadata["format"] == "anybody-identity" and metadata["name"] == "alice"


def test_coefficients_are_only_used_in_the_basis_they_were_made_in(tmp_path):
    from anybody.basis import build_basis
    from anybody.models.tokenizer import clip_tokenizer

    tokenizer = clip_tokenizer()
    table = torch.randn(49408, 32, generator=torch.Generator().manual_seed(0)) * 0.02
    basis = build_basis(tokenizer, table, cache_folder=tmp_path)
    other = build_basis(tokenizer, table, names=["Tom Hanks", "Emma Watson", "Brad Pitt", "Will Smith"],
                        cache_folder=tmp_path)
    coefficients = torch.nn.functional.normalize(torch.randn(2, basis.rank), dim=-1)
    identity = _identity()
    identity.encoder_coefficients["text_encoder"] = coefficients
    identity.metadata["basis.text_encoder"] = basis.key
    assert torch.allclose(identity.embeddings_in(basis), basis.embeddings(coefficients))
    with pytest.raises(IdentityError, match="not in this one"):
        identity.embeddings_in(other)
    assert identity.embeddings.shape == (2, 32)  # the stored embeddings need no basis
