"""`anybody export` and `anybody import` as a new user meets them: one file per format, nothing replaced
silently, the prompt word of the file really written, readable modes, diffusers' SDXL output whole."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from anybody.identity import Identity
from anybody.interfaces.cli import main


def _library(tmp_path, widths=(32,)):
    library = tmp_path / "library"
    embeddings = dict(zip(("text_encoder", "text_encoder_2"), (torch.randn(2, width) for width in widths)))
    Identity(name="alice", encoder_embeddings=embeddings,
             metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"}).save(library=library)
    return library


def _export(library, *options: str) -> list[str]:
    return ["export", "alice", "--library", str(library), *options]


def test_formats_exported_without_out_never_replace_each_other(tmp_path, monkeypatch, capsys):
    library = _library(tmp_path)
    monkeypatch.chdir(tmp_path)
    written = []
    for fmt in ("a1111-safetensors", "comfyui", "invokeai", "kohya", "diffusers"):
        assert main(_export(library, "--format", fmt)) == 0
        written.append(capsys.readouterr().out.splitlines()[0])
    assert len(set(written)) == 5 and all((tmp_path / path).is_file() for path in written)
    assert written[0] == "anybody-output/exports/a1111-safetensors/alice.safetensors"
    assert written[3] == "anybody-output/exports/kohya/alice-anybody.safetensors"


def test_a_second_export_is_refused_without_replace(tmp_path, monkeypatch, capsys):
    library = _library(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(_export(library, "--format", "comfyui")) == 0
    path = tmp_path / capsys.readouterr().out.splitlines()[0]
    before = path.read_bytes()
    assert main(_export(library, "--format", "comfyui")) == 2
    error = capsys.readouterr().err
    assert error == (f"error: {path.relative_to(tmp_path)} already exists. Add --replace to overwrite it, or "
                     "choose another --out path.\n")
    assert path.read_bytes() == before
    assert main(_export(library, "--format", "comfyui", "--replace")) == 0


def test_the_hint_names_the_file_written_and_its_prompt_word(tmp_path, capsys):
    library = _library(tmp_path)
    out = tmp_path / "ex" / "alice-a1111.pt"
    assert main(_export(library, "--format", "a1111", "--out", str(out))) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == str(out)
    assert "prompt word: alice-a1111 (alice-a1111.pt -> alice-a1111)" in printed and "alice.pt" not in printed
    assert main(_export(library, "--format", "kohya", "--out", str(tmp_path / "alice.safetensors"))) == 2
    assert "Name the file alice-anybody.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "alice.safetensors").exists()


def test_exports_are_readable_by_other_users_under_the_usual_umask(tmp_path, monkeypatch, capsys):
    library = _library(tmp_path)
    monkeypatch.chdir(tmp_path)
    previous = os.umask(0o022)
    try:
        assert main(_export(library, "--format", "a1111")) == 0
    finally:
        os.umask(previous)
    path = tmp_path / capsys.readouterr().out.splitlines()[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755


@pytest.mark.slow  # loads the tiny SDXL model twice
def test_diffusers_sdxl_training_output_imports_as_one_sdxl_identity_for_an_sdxl_model(tmp_path, capsys):
    """The folder textual_inversion_sdxl.py leaves (widths of the tiny SDXL model), imported with --model."""
    from anybody.models import load_pipeline, text_encoders

    widths = [encoder.get_input_embeddings().weight.shape[1]
              for _, _, encoder in text_encoders(load_pipeline("tiny-sdxl", device="cpu"))]
    folder = tmp_path / "textual_inversion_sdxl"
    folder.mkdir()
    rows = [torch.randn(2, width) for width in widths]
    for name, value in zip(("learned_embeds.safetensors", "learned_embeds_2.safetensors"), rows):
        save_file({"<cat-toy>": value}, folder / name, metadata={"format": "pt"})
    library = tmp_path / "library"
    assert main(["import", str(folder), "--name", "cat", "--model", "tiny-sdxl", "--library", str(library)]) == 0
    assert "Imported cat (2 vectors)" in capsys.readouterr().out
    cat = Identity.load("cat", library)
    assert torch.equal(cat.encoder_embeddings["text_encoder"], rows[0])
    assert torch.equal(cat.encoder_embeddings["text_encoder_2"], rows[1])
    (folder / "learned_embeds_2.safetensors").unlink()
    assert main(["import", str(folder), "--name", "cat2", "--model", "tiny-sdxl", "--library", str(library)]) == 2
    assert "but not learned_embeds_2.safetensors: an SDXL model needs both" in capsys.readouterr().err


def test_the_export_and_import_parsers_import_no_model_library():
    """The --format choices come from the format table, which is plain data: start-up stays fast."""
    code = ("import argparse, sys; from anybody.interfaces.cli import library; "
            "library.add_parsers(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(name for name in ('torch', 'safetensors', 'transformers') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
