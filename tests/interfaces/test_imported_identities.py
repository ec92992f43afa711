"""Every identity in the library can be drawn: an embedding imported from another tool names no model, and
generate, attention and mix still draw it (with --model, ANYBODY_MODEL or its family's model), or say in one
line that --model is needed. Every "Next:" line the commands print is run here, as printed."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import anybody
from anybody.errors import UsageError
from anybody.generation.checks import check_identities
from anybody.identity import Identity
from anybody.interfaces.cli import main

QUICK = ["--steps", "2", "-n", "1"]  # options that leave the model's choice alone


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """alice, learned on tiny (as a file says it), and the embedding file imp.safetensors beside the library."""
    folder = tmp_path / "library"
    Identity(name="alice", encoder_embeddings={"text_encoder": torch.randn(2, 32)},
             metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"}).save(library=folder)
    save_file({"<imp>": torch.randn(2, 32)}, str(tmp_path / "imp.safetensors"))
    return folder


def _next(printed: str) -> list[str]:
    """The argv of the "Next:" line, as a user would paste it."""
    line = next(line for line in printed.splitlines() if line.startswith("Next: "))
    return shlex.split(line.removeprefix("Next: anybody "))


def test_an_import_without_a_model_is_drawn_with_model_and_the_hint_says_so(library, tmp_path, capsys):
    assert main(["import", str(tmp_path / "imp.safetensors"), "--name", "imp", "--library", str(library)]) == 0
    printed = capsys.readouterr().out
    imp = Identity.load("imp", library)
    assert imp.base_model is None and "base_model" not in imp.metadata and "family" not in imp.metadata
    assert "--model MODEL  (MODEL: one whose text encoder is 32 wide; imp names none)" in printed
    assert main(["identities", "--library", str(library)]) == 0
    assert "not known" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("imp"))

    drawing = ["generate", "a photo of imp", "--identity", "imp", "--library", str(library), *QUICK]
    assert main(drawing) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: The identity imp does not say which model it was made for") and \
        "Pass --model with a model whose text encoder is 32 wide, or set ANYBODY_MODEL." in error
    assert len(error.strip().splitlines()) == 1
    out = tmp_path / "drawn"
    hint = _next(printed)
    assert hint[hint.index("--model") + 1] == "MODEL"
    assert main([*hint[: hint.index("--model")], "--model", "tiny", *QUICK, "--out", str(out)]) == 0  # MODEL: tiny
    assert Image.open(next(out.glob("00-seed*.png"))).text["model"] == "tiny"
    assert main(["attention", "a photo of imp", "--identity", "imp", "--library", str(library), "--model", "tiny",
                 "--steps", "2", "--out", str(tmp_path / "attention.png")]) == 0


def test_anybody_model_draws_an_identity_that_names_none(library, tmp_path, monkeypatch, capsys):
    assert main(["import", str(tmp_path / "imp.safetensors"), "--name", "imp", "--library", str(library)]) == 0
    monkeypatch.setenv("ANYBODY_MODEL", "tiny")
    out = tmp_path / "drawn"
    assert main(["generate", "a photo of imp", "--identity", "imp", "--library", str(library), *QUICK,
                 "--out", str(out)]) == 0
    assert "imp does not say which model it was made for: drawing with ANYBODY_MODEL, tiny" in capsys.readouterr().err
    assert Image.open(next(out.glob("00-seed*.png"))).text["model"] == "tiny"


def test_an_identity_of_a_known_family_is_drawn_with_that_family_s_model(tmp_path):
    """Checked from the file's header alone (the real models are not on this machine): an old import that
    says "unknown" is read as naming no model, and its widths choose the model."""
    for widths, model in (([768], "CompVis/stable-diffusion-v1-4"), ([1024], "stabilityai/stable-diffusion-2-1"),
                          ([768, 1280], "stabilityai/stable-diffusion-xl-base-1.0")):
        encoders = dict(zip(("text_encoder", "text_encoder_2"), (torch.randn(1, width) for width in widths)))
        Identity(name="old", encoder_embeddings=encoders,
                 metadata={"method": "imported", "base_model": "unknown", "family": "unknown"}).save(library=tmp_path)
        assert check_identities("a photo of old", ["old"], tmp_path, None) == model
        assert check_identities("a photo of old", ["old"], tmp_path, "tiny") == "tiny"
        (tmp_path / "old.safetensors").unlink()


def test_the_python_api_draws_it_with_a_model_and_refuses_without(library, tmp_path):
    assert main(["import", str(tmp_path / "imp.safetensors"), "--name", "imp", "--library", str(library)]) == 0
    with pytest.raises(UsageError, match="does not say which model it was made for"):
        anybody.generate("a photo of imp", "imp", library=library, num_inference_steps=2, num_images_per_prompt=1)
    result = anybody.generate("a photo of imp", "imp", "tiny", library=library, num_inference_steps=2,
                              num_images_per_prompt=1)
    assert len(result.images) == 1


def test_an_import_checked_against_a_model_records_it_and_its_hint_draws(library, tmp_path, capsys):
    assert main(["import", str(tmp_path / "imp.safetensors"), "--name", "imp", "--model", "tiny",
                 "--library", str(library)]) == 0
    printed = capsys.readouterr().out
    imp = Identity.load("imp", library)
    assert imp.base_model == "tiny" and imp.metadata["family"] == "sd1" and "--model" not in printed
    assert main([*_next(printed), *QUICK, "--out", str(tmp_path / "drawn")]) == 0


def test_a_learned_and_an_imported_identity_mix_and_the_hint_draws_the_mix(library, tmp_path, capsys):
    assert main(["import", str(tmp_path / "imp.safetensors"), "--name", "imp", "--library", str(library)]) == 0
    capsys.readouterr()
    assert main(["mix", "alice", "imp", "--name", "alimp", "--library", str(library)]) == 0
    printed = capsys.readouterr().out
    assert Identity.load("alimp", library).base_model == "tiny"  # the one model its parents name
    assert main([*_next(printed), *QUICK, "--out", str(tmp_path / "drawn")]) == 0


def test_a_mix_of_identities_naming_no_model_hints_at_the_model_it_was_given(tmp_path, capsys):
    library = tmp_path / "library"
    for name in ("imp", "kit"):
        save_file({f"<{name}>": torch.randn(2, 32)}, str(tmp_path / f"{name}.safetensors"))
        assert main(["import", str(tmp_path / f"{name}.safetensors"), "--name", name, "--library", str(library)]) == 0
    capsys.readouterr()
    assert main(["mix", "imp", "kit", "--name", "impkit", "--model", "tiny", "--library", str(library)]) == 0
    hint = _next(capsys.readouterr().out)
    assert hint[-2:] == ["--model", "tiny"]
    assert main([*hint, *QUICK, "--out", str(tmp_path / "drawn")]) == 0
