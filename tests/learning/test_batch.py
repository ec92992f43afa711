"""`anybody learn-batch`: every photo of a folder (or row of a CSV) learned exactly once, shared out among the
processes of a torchrun launch through accelerate's PartialState (gloo on the CPU); failures are listed
with their reason and the others go on; a second run learns nothing new."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from anybody.errors import UsageError
from anybody.identity import Identity
from anybody.interfaces.cli import main
from anybody.learning.batch import Job, read_jobs

ROOT = Path(__file__).resolve().parents[2]


def test_a_folder_gives_one_job_per_photo_named_after_the_file(tmp_path, sample_photo):
    for name in ("Bob.JPG", "alice.png"):
        shutil.copy(sample_photo, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "sub").mkdir()
    assert read_jobs(tmp_path) == [Job(tmp_path / "Bob.JPG", "bob"), Job(tmp_path / "alice.png", "alice")]


def test_a_csv_gives_names_and_methods_with_photos_relative_to_the_folder(tmp_path):
    table = tmp_path / "people.csv"
    table.write_text("Name,Photo,Method\nalice,a/1.jpg,sefi\n\nbob,b.png,\n")
    assert read_jobs(tmp_path, table) == [Job(tmp_path / "a/1.jpg", "alice", "sefi"), Job(tmp_path / "b.png", "bob")]


@pytest.mark.parametrize(("text", "message"), [
    ("photo,name\nme.jpg,alice,x\n", "Row 2 of .* has 3 fields"),
    ("photo,name,method\nme.jpg,alice,dreambooth\n", "Row 2 of .* names an unknown method 'dreambooth'"),
    ("photo,name\nme.jpg,../evil\n", "Row 2 of .* gives no usable name"),
    ("photo,name\n,alice\n", "Row 2 of .* has no photo"),
    ("photo,name\n", "has a header but no rows"),
    ("", "is empty"),
])
def test_a_bad_csv_is_refused_naming_the_row(tmp_path, text, message):
    table = tmp_path / "people.csv"
    table.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_jobs(tmp_path, table)


def make_photos(folder: Path, sample: Path) -> None:
    """Three photos of a face (the sample, mirrored, brighter) and a gradient without one."""
    folder.mkdir()
    face = Image.open(sample).convert("RGB")
    face.save(folder / "alice.jpg")
    ImageOps.mirror(face).save(folder / "bob.jpg")
    ImageEnhance.Brightness(face).enhance(1.2).save(folder / "carol.png")
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))
    Image.fromarray(np.stack([ramp, ramp.T, 255 - ramp], axis=-1)).save(folder / "nobody.png")


def learn_batch_under_torchrun(folder: Path, home: Path, summary: Path, code: int) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "anybody", "learn-batch", str(folder), "--model", "tiny", "--steps", "3", "--views", "2",
               "--summary", str(summary)]
    env = {**os.environ, "ANYBODY_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == code, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Summary: {summary}" in done.stdout
    return json.loads(summary.read_text())


@pytest.mark.slow
def test_two_processes_learn_each_identity_once_report_the_bad_photo_and_a_rerun_learns_nothing(tmp_path,
                                                                                              sample_photo):
    make_photos(tmp_path / "photos", sample_photo)
    first = learn_batch_under_torchrun(tmp_path / "photos", tmp_path / "home", tmp_path / "first.json", code=1)
    learned = {entry["name"]: entry["process"] for entry in first["learned"]}
    assert sorted(learned) == ["alice", "bob", "carol"]  # each once: a list, so a repeat would show
    assert len(first["learned"]) == 3 and first["processes"] == 2
    assert set(learned.values()) == {0, 1}  # both processes learned
    assert [(entry["name"], entry["reason"][:26]) for entry in first["failed"]] == [("nobody",
                                                                                   "No face was found in the p")]
    assert first["skipped"] == []
    library = tmp_path / "home" / "identities"
    assert sorted(path.stem for path in library.glob("*.safetensors")) == ["alice", "bob", "carol"]
    thumbnails = [Identity.load(path).face_thumbnail for path in library.glob("*.safetensors")]
    assert all(thumbnail.shape == (96, 96, 3) for thumbnail in thumbnails)  # the web app shows their faces
    stamps = {path.name: path.stat().st_mtime_ns for path in library.glob("*.safetensors")}

    again = learn_batch_under_torchrun(tmp_path / "photos", tmp_path / "home", tmp_path / "again.json", code=1)
    assert again["learned"] == []
    assert sorted(entry["name"] for entry in again["skipped"]) == ["alice", "bob", "carol"]
    assert [entry["name"] for entry in again["failed"]] == ["nobody"]
    assert {path.name: path.stat().st_mtime_ns for path in library.glob("*.safetensors")} == stamps


def _skipped_library(tmp_path: Path, sample_photo: Path) -> Path:
    """The photos, and a library already holding alice, bob and carol (skipped: nothing to learn)."""
    make_photos(tmp_path / "photos", sample_photo)
    library = tmp_path / "library"
    for name in ("alice", "bob", "carol"):
        Identity(name=name, encoder_embeddings={"text_encoder": torch.randn(2, 32)},
                 metadata={"method": "celeb-basis", "base_model": "tiny"}).save(library=library)
    return library


def test_the_exit_status_is_0_when_every_photo_was_learned_or_skipped(tmp_path, sample_photo, capsys):
    library = _skipped_library(tmp_path, sample_photo)
    (tmp_path / "photos" / "nobody.png").unlink()
    assert main(["learn-batch", str(tmp_path / "photos"), "--model", "tiny", "--library", str(library),
                 "--summary", str(tmp_path / "summary.json")]) == 0
    assert "0 learned, 3 skipped, 0 failed" in capsys.readouterr().out


@pytest.mark.slow
def test_the_exit_status_is_1_when_a_photo_failed_and_the_summary_says_which(tmp_path, sample_photo, capsys):
    """A script notices a failed photo by the exit status; the summary (printed and JSON) says which and why."""
    library = _skipped_library(tmp_path, sample_photo)
    assert main(["learn-batch", str(tmp_path / "photos"), "--model", "tiny", "--steps", "2", "--library",
                 str(library), "--summary", str(tmp_path / "summary.json")]) == 1
    printed = capsys.readouterr().out
    assert "0 learned, 3 skipped, 1 failed" in printed and "failed   nobody (nobody.png): No face was found" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [entry["name"] for entry in summary["failed"]] == ["nobody"] and len(summary["skipped"]) == 3
