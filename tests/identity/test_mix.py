"""Mixing learned people: in the celeb basis for Celeb Basis identities, by token rows for the others.

The parents are learned for real on the tiny models (a few steps: mixing needs real identity files, not
good ones): alice from the sample photo, bob from Grace Hopper's portrait, on the same model and basis.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import anybody
from anybody.basis import cached_bases
from anybody.errors import IdentityError, UsageError
from anybody.identity import Identity
from anybody.interfaces.cli import main
from anybody.learning import LearnConfig, learn
from anybody.models import load_pipeline

OTHER_PERSON = Path(__file__).resolve().parents[1] / "data" / "grace_hopper.jpg"
QUICK = {"steps": 2, "views": 2, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def parents(tmp_path_factory: pytest.TempPathFactory, anybody_home: Path) -> Path:
    """A library with Celeb Basis alice and bob, and SeFi-IDE carol and dora (all on tiny)."""
    library = tmp_path_factory.mktemp("mix-library")
    sample = Path(anybody.__file__).parent / "data" / "sample_face.jpg"
    tiny = load_pipeline("tiny", device="cpu")
    learn([sample, OTHER_PERSON], ["alice", "bob"], tiny, LearnConfig(**QUICK), library=library, progress=False)
    learn([sample, OTHER_PERSON], ["carol", "dora"], tiny, LearnConfig.for_method("sefi", **QUICK), library=library,
          progress=False)
    return library


def test_weights_one_and_zero_give_the_first_identity_back_exactly(parents):
    alice = Identity.load("alice", parents)
    mixed = anybody.mix({"alice": 1.0, "bob": 0.0}, "alice_again", library=parents)
    loaded = Identity.load("alice_again", parents)
    for identity in (mixed, loaded):
        assert torch.equal(identity.coefficients, alice.coefficients)
        assert torch.equal(identity.embeddings, alice.embeddings)
    assert loaded.metadata["mixed_from"] == {"alice": 1.0, "bob": 0.0}
    assert loaded.metadata["basis.text_encoder"] == alice.metadata["basis.text_encoder"]
    assert loaded.method == "celeb-basis" and loaded.base_model == "tiny" and loaded.photos == []


def test_an_even_mix_lies_between_the_two_in_the_basis_renormalised_per_token(parents):
    alice, bob = Identity.load("alice", parents), Identity.load("bob", parents)
    mixed = anybody.mix({"alice": 2, "bob": 2}, "alibob", library=parents)  # normalised to 0.5, 0.5
    assert mixed.metadata["mixed_from"] == {"alice": 0.5, "bob": 0.5}
    a, b, c = alice.coefficients, bob.coefficients, mixed.coefficients
    cosine = torch.nn.functional.cosine_similarity
    # Between the two, per token: in the direction of a + b, nearer to each than they are to each other...
    assert torch.allclose(cosine(c, a + b, dim=-1), torch.ones(2), atol=1e-5)
    assert torch.all(cosine(c, a, dim=-1) > cosine(a, b, dim=-1))
    assert torch.all(cosine(c, b, dim=-1) > cosine(a, b, dim=-1))
    # ...at the parents' mean norm, not pulled toward the celebrity mean (|a + b| / 2 is shorter).
    assert torch.allclose(c.norm(dim=-1), (a.norm(dim=-1) + b.norm(dim=-1)) / 2, atol=1e-6)
    assert torch.all(((a + b) / 2).norm(dim=-1) < c.norm(dim=-1) - 1e-3)
    # The tokens are the basis's embeddings of those coefficients.
    basis = next(basis for basis in cached_bases(alice.metadata["basis.text_encoder"])
                 if torch.allclose(basis.embeddings(a), alice.embeddings, atol=1e-5))
    assert torch.allclose(mixed.embeddings, basis.embeddings(c), atol=1e-5)
    assert torch.allclose(mixed.embeddings, mixed.embeddings_in(basis), atol=1e-5)


@pytest.mark.slow
def test_without_the_basis_cache_the_basis_is_built_from_the_model(parents, tmp_path, monkeypatch):
    expected = anybody.mix({"alice": 0.7, "bob": 0.3}, "cached", library=parents)
    monkeypatch.setattr("anybody.settings.bases_folder", lambda: tmp_path / "empty-bases")
    rebuilt = anybody.mix({"alice": 0.7, "bob": 0.3}, "rebuilt", library=parents)
    assert list((tmp_path / "empty-bases").glob("*.safetensors")), "the basis was built (and cached) anew"
    assert torch.allclose(rebuilt.embeddings, expected.embeddings, atol=1e-6)
    monkeypatch.setattr("anybody.settings.bases_folder", lambda: tmp_path / "still-empty")
    with pytest.raises(IdentityError, match="does not give the celeb basis alice was learned in"):
        anybody.mix({"alice": 0.7, "bob": 0.3}, "wrong", library=parents, model="tiny-sd2")
    # A mix of a mix: the basis is built with the options the mix recorded from its parents.
    assert Identity.load("rebuilt", parents).metadata["basis_options"] == alice_options(parents)
    monkeypatch.setattr("anybody.settings.bases_folder", lambda: tmp_path / "third")
    again = anybody.mix({"rebuilt": 0.5, "alice": 0.5}, "again", library=parents)
    assert again.metadata["mixed_from"] == {"rebuilt": 0.5, "alice": 0.5} and list((tmp_path / "third").iterdir())


def alice_options(library: Path) -> dict:
    return Identity.load("alice", library).metadata["training"]["basis"]


def test_identities_without_coefficients_mix_by_their_rows_with_a_warning(parents, anybody_log):
    carol, dora = Identity.load("carol", parents), Identity.load("dora", parents)
    mixed = anybody.mix({"carol": 0.25, "dora": 0.75}, "cardo", library=parents)
    assert "carol and dora have no basis coefficients (sefi): their token rows are averaged" in anybody_log.text
    for part in ("stage_keys", "stage_values", "encoder_embeddings"):
        ours, theirs = getattr(carol, part)["text_encoder"], getattr(dora, part)["text_encoder"]
        assert torch.allclose(getattr(mixed, part)["text_encoder"], 0.25 * ours + 0.75 * theirs, atol=1e-7)
    loaded = Identity.load("cardo", parents)
    assert loaded.stages == carol.stages and loaded.method == "sefi" and loaded.metadata["stages"] == "5"


@pytest.mark.slow
def test_identities_of_different_families_are_refused_naming_them(parents, tiny_pipeline):
    learn(Path(anybody.__file__).parent / "data" / "sample_face.jpg", "erin", tiny_pipeline("tiny-sd2"),
          LearnConfig(**QUICK), library=parents, progress=False, replace=True)
    with pytest.raises(IdentityError, match=r"alice and erin cannot be mixed: alice was made for SD 1.x \(tokens "
                                            r"text_encoder 2x32\) and erin for SD 2.x \(tokens text_encoder 2x48\)"):
        anybody.mix({"alice": 1.0, "erin": 1.0}, "nobody", library=parents)


def _imported(library: Path, name: str, tokens: int, seed: int) -> Identity:
    """An embedding as `anybody import` stores one from another tool: no base model, and no family (32 wide)."""
    rows = torch.randn(tokens, 32, generator=torch.Generator().manual_seed(seed))
    identity = Identity(name=name, encoder_embeddings={"text_encoder": rows},
                        metadata={"method": "imported", "base_model": "unknown", "family": "unknown"})
    identity.save(library=library)
    return identity


def test_identities_of_other_methods_or_no_model_mix_by_their_rows(parents, anybody_log):
    """An imported embedding names no model or family (and older files said "unknown"): it mixes with a learned
    identity of its widths, by their rows, and the mix keeps what the parents that say agree on."""
    alice, imp = Identity.load("alice", parents), _imported(parents, "imp", 2, seed=3)
    mixed = anybody.mix({"alice": 0.25, "imp": 0.75}, "alimp", library=parents)
    assert "imp has no basis coefficients (imported): the alice and imp token rows are averaged" in anybody_log.text
    assert torch.allclose(mixed.embeddings, 0.25 * alice.embeddings + 0.75 * imp.embeddings, atol=1e-7)
    loaded = Identity.load("alimp", parents)
    assert loaded.base_model == "tiny" and loaded.metadata["family"] == "sd1" and not loaded.encoder_coefficients
    assert "method" not in loaded.metadata  # celeb-basis and imported: no one method


def test_an_identity_without_stages_counts_with_its_tokens_at_every_stage(parents):
    carol, solo = Identity.load("carol", parents), _imported(parents, "solo", 1, seed=4)
    mixed = anybody.mix({"carol": 0.5, "solo": 0.5}, "carsolo", library=parents)
    assert mixed.stages == carol.stages
    for part in ("stage_keys", "stage_values"):
        expected = 0.5 * getattr(carol, part)["text_encoder"] + 0.5 * solo.embeddings.expand(carol.stages, -1, -1)
        assert torch.allclose(getattr(mixed, part)["text_encoder"], expected, atol=1e-7)


def test_identities_with_other_token_counts_are_refused_naming_them(parents):
    with pytest.raises(IdentityError, match=r"alice and carol cannot be mixed: their tokens differ \(alice: "
                                            r"text_encoder 2x32; carol: text_encoder 1x32\)"):
        anybody.mix({"alice": 1.0, "carol": 1.0}, "nobody", library=parents)


def test_identities_of_different_bases_are_refused_and_of_different_models_mixed(parents, tmp_path):
    alice = Identity.load("alice", parents)
    other_basis = Identity(**{**vars(alice), "name": "frank", "path": None,
                              "metadata": {**alice.metadata, "basis.text_encoder": "f" * 64}})
    other_basis.save(library=parents)
    with pytest.raises(IdentityError, match="alice and frank cannot be mixed: they were learned in different celeb "
                                            "bases"):
        anybody.mix({"alice": 0.5, "frank": 0.5}, "nobody", library=parents)
    other_model = Identity(**{**vars(alice), "name": "gina", "path": None,
                              "metadata": {**alice.metadata, "base_model": "my-fine-tune"}})
    other_model.save(library=parents)
    mixed = anybody.mix({"alice": 0.5, "gina": 0.5}, "algi", library=parents)  # one basis: its coefficients mix
    assert mixed.base_model is None and mixed.metadata["family"] == "sd1" and mixed.encoder_coefficients


@pytest.mark.parametrize(("weights", "message"), [
    ({"alice": -0.5, "bob": 1.5}, r"The weight of alice must be a finite number, 0 or more \(got -0.5\)"),
    ({"alice": math.nan, "bob": 1.0}, r"The weight of alice must be a finite number, 0 or more \(got nan\)"),
    ({"alice": 1.0, "bob": math.inf}, r"The weight of bob must be a finite number, 0 or more \(got inf\)"),
    ({"alice": 0.0, "bob": 0.0}, "The weights are all 0"),
    ({"alice": 1.0}, r"Mixing needs at least two identities \(got 1\)"),
])
def test_bad_weights_are_refused_in_one_line(parents, weights, message):
    with pytest.raises(UsageError, match=message):
        anybody.mix(weights, "nobody", library=parents)


def test_the_command_mixes_exports_and_refuses_a_taken_name(parents, tmp_path, capsys):
    argv = ["mix", "alice", "bob", "--weights", "0.7,0.3", "--name", "alibob_cli", "--library", str(parents)]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "Mixed alibob_cli = 0.7 alice + 0.3 bob" in said and "--identity alibob_cli" in said
    mixed = Identity.load("alibob_cli", parents)
    assert mixed.metadata["mixed_from"] == pytest.approx({"alice": 0.7, "bob": 0.3})
    out = tmp_path / "alibob.safetensors"
    assert main(["export", "alibob_cli", "--format", "a1111-safetensors", "--out", str(out),
                 "--library", str(parents)]) == 0
    assert out.is_file()
    assert main(argv) == 2
    assert "already has an identity called alibob_cli" in capsys.readouterr().err
    assert main([*argv, "--replace"]) == 0
    for bad, said in ((["--weights", "0.7"], "--weights has 1 value for 2 identities"),
                      (["--weights", "a,b"], "The weights must be numbers separated by commas (got 'a,b')")):
        assert main(["mix", "alice", "bob", *bad, "--name", "x", "--library", str(parents)]) == 2
        assert said in capsys.readouterr().err
    assert main(["mix", "alice", "alice", "--name", "x", "--library", str(parents)]) == 2
    assert "The identity alice is given twice" in capsys.readouterr().err

    with safe_open(str(parents / "alibob_cli.safetensors"), framework="pt") as handle:  # stored as JSON
        assert json.loads(handle.metadata()["mixed_from"]) == pytest.approx({"alice": 0.7, "bob": 0.3})
