"""Starting the command line: arguments are checked, and the library commands run, before any model library
is imported (importing torch, diffusers and transformers costs seconds, which every command used to pay)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anybody.identity import Identity

ROOT = Path(__file__).resolve().parents[2]
MODEL_LIBRARIES = ("diffusers", "transformers", "dlib")
RUN = """
import json, os, sys
from anybody.interfaces.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = [name for name in ("torch", "diffusers", "transformers", "dlib") if name in sys.modules]
print(json.dumps({"code": code, "imported": heavy, "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def _run(argv: list[str], cwd: Path, **variables: str) -> dict:
    """The CLI run on argv in a fresh interpreter: its exit code, the heavy libraries imported, and the
    OpenMP wait policy torch would start with."""
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    environment.update(ANYBODY_HOME=str(cwd / "home"), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **variables)
    done = subprocess.run([sys.executable, "-c", RUN, *argv], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _start(argv: list[str], cwd: Path) -> tuple[int, list[str]]:
    """(exit code, heavy libraries imported) of the CLI run on argv in a fresh interpreter."""
    result = _run(argv, cwd)
    return result["code"], result["imported"]


@pytest.mark.parametrize("argv, code", [
    (["--help"], 0),
    (["generate", "a photo of alice", "-n", "0"], 2),
    (["generate", "a photo of alice", "--batch-size", "0"], 2),
    (["attention", "a photo of alice", "--steps", "0"], 2),
    (["learn", "photo.jpg", "--name", "bob", "--steps", "0"], 2),
    (["learn", "a.jpg", "b.jpg", "--name", "ann,bob", "--same-person"], 2),
    (["mix", "alice", "bob", "--weights", "0,0", "--name", "x"], 2),
    (["identities", "--library", "empty"], 0),
    (["identities", "show", "--library", "empty"], 2),
    (["generate", "a photo of alice", "--mask", "mask.png"], 2),
    (["generate", "a photo of alice", "--image", "empty", "--strength", "1.5"], 2),
    (["generate", "a photo of alice", "--image", "missing.png"], 2),
    (["generate", "a photo of alice", "--control", "missing.png", "--controlnet", "./missing-controlnet"], 2),
    (["generate", "a photo of a cat", "--model", "nosuch/model"], 2),
    (["attention", "a photo of a cat", "--model", "Tiny"], 2),
    (["basis", "--model", "nosuch/model"], 2),
    (["basis", "filter", "--model", "tinyy"], 2),
    (["demo", "--model", "./models/sd15"], 2),
    (["models"], 0),
    (["models", "--json"], 0),
    (["models", "download", "nosuch/model"], 2),
    (["ui", "--controlnet", "nobody/controlnet"], 2),
], ids=["help", "generate -n 0", "generate --batch-size 0", "attention --steps 0", "learn --steps 0",
        "learn --same-person with two names", "mix with all-zero weights", "identities, empty library",
        "identities show without a name", "generate --mask without --image", "generate --strength 1.5",
        "generate --image missing.png", "generate --controlnet ./missing-controlnet",
        "generate --model nosuch/model (not here, offline)", "attention --model Tiny (did you mean tiny?)",
        "basis --model nosuch/model (not here, offline)", "basis filter --model tinyy (did you mean tiny?)",
        "demo --model ./models/sd15 (no such path)", "models", "models --json", "models download offline",
        "ui --controlnet not here (offline)"])
def test_refusals_and_an_empty_library_import_no_torch_nor_any_model_library(tmp_path, argv, code):
    (tmp_path / "empty").mkdir()
    assert _start(argv, tmp_path) == (code, [])


def _library(folder: Path) -> None:
    Identity(name="alice", encoder_embeddings={"text_encoder": torch.randn(2, 8)},
             metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"}).save(library=folder / "lib")


def test_identities_are_listed_shown_and_removed_without_torch(tmp_path):
    """Identity files are read and checked with numpy; torch is imported only to use an identity."""
    _library(tmp_path)
    for argv in (["identities", "--library", "lib"], ["identities", "show", "alice", "--library", "lib"],
                 ["identities", "remove", "alice", "--yes", "--library", "lib"]):
        assert _start(argv, tmp_path) == (0, []), argv
    assert not (tmp_path / "lib" / "alice.safetensors").exists()


LIBRARY_REFUSALS = {  # every argument checked from the identity files and the paths, before any model library
    "generate, an identity the library lacks": ["generate", "a photo of zed", "--identity", "zed", "--library", "lib"],
    "generate, a prompt without the identity's word": ["generate", "a photo of bob", "--identity", "alice",
                                                       "--library", "lib"],
    "generate, an identity twice": ["generate", "a photo of alice", "--identity", "alice,alice", "--library", "lib"],
    "generate, an import naming no model, without --model": ["generate", "a photo of imp", "--identity", "imp",
                                                             "--library", "lib"],
    "attention, an identity the library lacks": ["attention", "a photo of zed", "--identity", "zed",
                                                 "--library", "lib"],
    "export zed": ["export", "zed", "--format", "a1111", "--library", "lib"],
    "export over an existing file": ["export", "alice", "--format", "a1111", "--out", "taken.pt", "--library", "lib"],
    "export a1111 to a .txt": ["export", "alice", "--format", "a1111", "--out", "alice.txt", "--library", "lib"],
    "export --token where the format has none": ["export", "alice", "--format", "comfyui", "--token", "<a>",
                                                 "--library", "lib"],
    "mix alice zed": ["mix", "alice", "zed", "--name", "x", "--library", "lib"],
    "mix alice alice": ["mix", "alice", "alice", "--name", "x", "--library", "lib"],
    "identities remove zed": ["identities", "remove", "zed", "--yes", "--library", "lib"],
    "import a file that is not there": ["import", "missing.pt", "--name", "x", "--library", "lib"],
    "evaluate a folder that is not there": ["evaluate", "nofolder"],
}


@pytest.mark.parametrize("argv", LIBRARY_REFUSALS.values(), ids=LIBRARY_REFUSALS.keys())
def test_identity_name_and_path_refusals_import_no_torch_nor_any_model_library(tmp_path, argv):
    _library(tmp_path)
    Identity(name="imp", encoder_embeddings={"text_encoder": torch.randn(2, 8)},
             metadata={"method": "imported"}).save(library=tmp_path / "lib")
    (tmp_path / "taken.pt").write_bytes(b"kept")
    assert _start(argv, tmp_path) == (2, [])
    assert (tmp_path / "taken.pt").read_bytes() == b"kept"


@pytest.mark.slow
def test_the_library_commands_and_face_import_no_diffusion_model_library(tmp_path):
    _library(tmp_path)
    shutil.copy(ROOT / "anybody" / "data" / "sample_face.jpg", tmp_path / "photo.jpg")
    commands = {
        "export": ["export", "alice", "--format", "a1111", "--out", "alice.pt", "--library", "lib"],
        "import": ["import", "alice.pt", "--name", "bob", "--library", "lib"],
        "face": ["face", "photo.jpg", "--out", "face"],
    }
    for label, argv in commands.items():
        code, imported = _start(argv, tmp_path)
        assert code == 0, label
        assert not set(imported) & set(MODEL_LIBRARIES[:2]), f"{label} imported {imported}"
        if label != "face":  # face detection is dlib's work
            assert "dlib" not in imported, label


def test_commands_let_waiting_openmp_threads_sleep_unless_the_environment_says_otherwise(tmp_path):
    """Spinning OpenMP threads made learning many times slower beside other work (BENCHMARKS.md)."""
    argv = ["generate", "a photo of alice", "-n", "0"]
    assert _run(argv, tmp_path)["wait_policy"] == "PASSIVE"
    assert _run(argv, tmp_path, OMP_WAIT_POLICY="ACTIVE")["wait_policy"] == "ACTIVE"
