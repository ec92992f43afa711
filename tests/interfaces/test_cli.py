"""The `anybody` command end to end on the tiny model, and its one-line errors."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
from PIL import Image

from anybody.interfaces.cli import main


@pytest.mark.slow
def test_learn_then_generate_through_the_cli(sample_photo, tmp_path, capsys):
    library = tmp_path / "library"
    assert main(["learn", str(sample_photo), "--name", "eileen", "--model", "tiny", "--steps", "4", "--views", "4",
                 "--library", str(library)]) == 0
    assert (library / "eileen.safetensors").is_file()
    hint = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Next: anybody "))
    out = tmp_path / "out"  # the "Next:" line, as printed, with a few more options
    assert main([*shlex.split(hint.removeprefix("Next: anybody ")), "-n", "2", "--steps", "2", "--seed", "3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "00-seed3.png" in printed and (out / "01-seed4.png").is_file() and (out / "sheet.png").is_file()
    assert Image.open(out / "00-seed3.png").text["model"] == "tiny"  # generate used the identity's own model


@pytest.mark.slow
def test_demo_makes_an_identity_four_images_and_a_sheet(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and "--model CompVis/stable-diffusion-v1-4" in printed
    assert (tmp_path / "eileen.safetensors").is_file() and not (tmp_path / ".checkpoints").exists()
    assert len(list(tmp_path.glob("0*-seed*.png"))) == 4 and (tmp_path / "sheet.png").is_file()
    assert main(["demo", "--out", str(tmp_path), "--steps", "1"]) == 0  # a second run replaces the first


def test_face_writes_what_will_be_learned(sample_photo, tmp_path, capsys):
    assert main(["face", str(sample_photo), "--out", str(tmp_path)]) == 0
    written = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert written and all(Image.open(path).format == "PNG" for path in written)


def test_basis_prints_its_statistics(capsys):
    assert main(["basis", "--model", "tiny"]) == 0
    printed = capsys.readouterr().out
    assert "first name:" in printed and "surname:" in printed and "explained variance" in printed
    assert "cached at" in printed


def test_errors_are_one_line_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "anybody", "learn", str(tmp_path / "missing.jpg"), "--name", "x",
         "--model", "tiny"], capture_output=True, text=True, env={"ANYBODY_HOME": str(tmp_path), "PATH": ""})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_and_taken_names_fail_before_loading_anything(sample_photo, tmp_path, capsys):
    """A model that does not exist would be the error if the model were loaded first: the name's is shown."""
    library = tmp_path / "library"
    _saved_identity(library, "alice")
    learn = ["learn", str(sample_photo), "--model", str(tmp_path / "no-model"), "--library", str(library), "--name"]
    for name, error in (("../evil", "characters a name cannot have"), ("Alice", "already has an identity called alice"),
                        ("photo", "a word anybody's own prompts use"), ("bob,bob", "1 photo and 2 names")):
        assert main([*learn, name]) == 2
        assert error in capsys.readouterr().err


def _saved_identity(library, name="alice", width=32, second_width=None):
    import torch

    from anybody.identity import Identity

    embeddings = {"text_encoder": torch.randn(2, width)}
    if second_width:
        embeddings["text_encoder_2"] = torch.randn(2, second_width)
    family = "sdxl" if second_width else "sd1"
    return Identity(name=name, encoder_embeddings=embeddings,
                    metadata={"method": "celeb-basis", "base_model": "tiny", "family": family}).save(library=library)


def test_identities_lists_shows_and_flags_what_does_not_fit(tmp_path, capsys):
    library = tmp_path / "library"
    _saved_identity(library, "alice")
    _saved_identity(library, "bob", width=768)
    _saved_identity(library, "carol", width=32, second_width=40)  # SDXL-shaped: its first width matches tiny's
    assert main(["identities", "--library", str(library), "--model", "tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["name", "method", "base", "model"]
    alice, bob, carol = (next(line for line in lines if line.startswith(name)) for name in ("alice", "bob", "carol"))
    assert "celeb-basis" in alice and "tiny" in alice and "!" not in alice
    assert "768" in bob and "does not fit tiny" in bob
    assert "32+40" in carol and "does not fit tiny" in carol
    assert main(["identities", "show", "alice", "--library", str(library)]) == 0
    shown = capsys.readouterr().out
    assert "embeddings (2, 32)" in shown and "method: celeb-basis" in shown


def test_identities_remove_asks_unless_told_yes(tmp_path, capsys):
    library = tmp_path / "library"
    path = _saved_identity(library, "alice")
    assert main(["identities", "remove", "alice", "--library", str(library)]) == 2
    assert "--yes" in capsys.readouterr().err and path.exists()
    assert main(["identities", "remove", "alice", "--library", str(library), "--yes"]) == 0
    assert not path.exists()


def test_export_then_import_through_the_cli(tmp_path, capsys):
    import torch

    from anybody.identity import Identity

    library = tmp_path / "library"
    _saved_identity(library, "alice")
    out = tmp_path / "alice.pt"
    assert main(["export", "alice", "--format", "a1111", "--out", str(out), "--library", str(library)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert main(["import", str(out), "--name", "alice", "--model", "tiny", "--library", str(library)]) == 2
    assert "already has an identity called alice" in capsys.readouterr().err
    assert main(["import", str(out), "--name", "dana", "--model", "tiny", "--library", str(library)]) == 0
    assert torch.equal(Identity.load("dana", library).embeddings, Identity.load("alice", library).embeddings)
    wide = tmp_path / "wide-kohya.safetensors"  # kohya refuses a CLIP word ("wide") as a file name
    _saved_identity(tmp_path / "other", "wide", width=768)
    assert main(["export", str(tmp_path / "other" / "wide.safetensors"), "--format", "kohya", "--out", str(wide)]) == 0
    assert main(["import", str(wide), "--name", "erin", "--model", "tiny", "--library", str(library)]) == 2
    error = capsys.readouterr().err
    assert "768" in error and "32" in error


def test_running_out_of_memory_is_one_line_naming_the_fixes(monkeypatch, capsys):
    """A real allocator failure (2**62 bytes) raised inside a command, as a model too big for the GPU would."""
    import torch

    from anybody.interfaces.cli import basis

    monkeypatch.setattr(basis, "run", lambda args: torch.empty(2**62, dtype=torch.uint8))
    assert main(["basis", "--model", "tiny"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Out of memory (it tried to allocate 4,294,967,296.0 GiB more). Draw fewer")
    assert error.count("\n") == 1 and "--batch-size 1" in error and "Traceback" not in error


@pytest.mark.slow
def test_basis_filter_suggests_no_basis_of_too_few_names(tmp_path, capsys):
    """The tiny model draws no faces, so no name is kept: `anybody basis --names` would be refused."""
    names = tmp_path / "names.txt"
    names.write_text("Tom Hanks\nEmma Stone\n")
    assert main(["basis", "filter", "--model", "tiny", "--names", str(names), "--images", "2", "--steps", "1",
                 "--out", str(tmp_path / "kept.txt")]) == 0
    printed = capsys.readouterr().out
    assert "0 kept so far" in printed and "Next:" not in printed
    assert "A basis needs at least 2 names" in printed


@pytest.mark.parametrize("argv", [
    ["learn", "photo.jpg", "--name", "bob", "--steps", "0"],
    ["learn", "photo.jpg", "--name", "bob", "--method", "sefi", "--steps", "0"],
    ["learn-batch", "faces", "--steps", "0"],
    ["generate", "a photo of alice", "--steps", "0"],
    ["attention", "a photo of alice", "--steps", "0"],
    ["basis", "filter", "--model", "tiny", "--steps", "0"],
    ["evaluate", "faces", "--steps", "0"],
    ["evaluate", "faces", "--task", "recovery", "--steps", "0"],
    ["evaluate", "faces", "--drawing-steps", "0"],
], ids=lambda argv: " ".join(argv[:1] + argv[-3:]))
def test_too_few_steps_is_said_one_way_everywhere(argv, tmp_path, monkeypatch, sample_photo, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "alice.jpg").write_bytes(sample_photo.read_bytes())
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert re.fullmatch(r"error: The number of (drawing )?steps must be at least 1 \(got 0\)\. Pass --(drawing-)?steps "
                        r"\d+, for example\.\n", error), error
