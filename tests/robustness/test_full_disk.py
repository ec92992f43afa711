"""A full disk (simulated) leaves the previous file byte for byte, and says so in one line.

`anybody.storage` is the one place files are written. Its `os` is replaced here by one whose files take
only so many bytes before the write fails with ENOSPC (as a real full disk does: part of the data is
written first), or whose fsync fails (as delayed allocation and network file systems report it), or
that refuses to create files (no free inodes, a read-only folder).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import anybody.storage
from anybody.errors import AnybodyError
from anybody.interfaces.cli import main
from tests.robustness import bad_files

DISK_FULL = "The disk is full: {} was not written (any previous version is intact). Free some space and run the " \
            "command again."


class _FillingFile:
    """A file object that takes `room` more bytes; then it writes what fits and fails with ENOSPC."""

    def __init__(self, stream, room: list[int]) -> None:
        self._stream, self._room = stream, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self._room[0]:
            self._stream.write(data[: self._room[0]])
            self._stream.flush()
            self._room[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room[0] -= len(data)
        return self._stream.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._stream.close()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _fail(code: int):
    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return failing


@pytest.fixture
def disk(monkeypatch):
    """`disk("write", room=100)`, `disk("fsync")`, `disk("create", errno.EROFS)`: from now on, writes fail so."""

    def fill(where: str, code: int = errno.ENOSPC, room: int = 100) -> None:
        faulty = SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
        if where == "write":
            left = [room]
            faulty.fdopen = lambda *args, **kwargs: _FillingFile(os.fdopen(*args, **kwargs), left)
        elif where == "fsync":
            faulty.fsync = _fail(code)
        elif where == "create":  # creating the temporary file beside the target
            faulty.open = _fail(code)
        monkeypatch.setattr(anybody.storage, "os", faulty)

    return fill


def _temporary_files(folder: Path) -> list[str]:
    return [path.name for path in folder.rglob(".*.tmp")]


@pytest.mark.parametrize("where", ["write", "fsync", "create"])
def test_replacing_an_identity_on_a_full_disk_keeps_the_previous_one(tmp_path, disk, where):
    library = tmp_path / "library"
    path = bad_files.identity("alice").save(library=library)
    previous = path.read_bytes()
    newer = bad_files.identity("alice")
    newer.encoder_embeddings["text_encoder"] = torch.ones(2, 32)
    disk(where)
    with pytest.raises(AnybodyError) as raised:
        newer.save(library=library)
    assert str(raised.value) == DISK_FULL.format(path)
    assert path.read_bytes() == previous
    assert _temporary_files(library) == []  # the half-written temporary file is gone too


def test_the_cli_says_the_disk_is_full_in_one_line(tmp_path, disk, monkeypatch, capsys):
    """`anybody import --replace` over an identity, on a full disk: the message, and alice as she was."""
    monkeypatch.chdir(tmp_path)
    bad_files.make_identity_files(tmp_path)
    previous = (tmp_path / "lib" / "alice.safetensors").read_bytes()
    disk("write", room=50)
    assert main(["import", "embedding.safetensors", "--name", "alice", "--replace", "--library", "lib"]) == 2
    err = capsys.readouterr().err
    assert err == "error: " + DISK_FULL.format(Path("lib") / "alice.safetensors") + "\n"
    assert (tmp_path / "lib" / "alice.safetensors").read_bytes() == previous
    assert _temporary_files(tmp_path / "lib") == []


@pytest.mark.slow
def test_a_generated_image_on_a_full_disk_keeps_the_previous_image(tmp_path, disk, monkeypatch, capsys):
    from anybody.models import load_pipeline

    load_pipeline("tiny")  # built (and written) before the disk fills
    monkeypatch.chdir(tmp_path)
    bad_files.identity("alice").save(library=tmp_path / "lib")
    command = ["generate", "a photo of alice", "--identity", "alice", "--library", "lib", "-n", "1", "--steps", "1",
               "--out", "out"]
    assert main(command) == 0
    image = tmp_path / "out" / "00-seed42.png"
    previous = image.read_bytes()
    capsys.readouterr()
    disk("write", room=1000)
    assert main([*command[:-4], "--steps", "2", "--out", "out"]) == 2  # another picture over the same file
    err = capsys.readouterr().err  # the drawing's progress bar, then one line
    assert err.endswith("\nerror: " + DISK_FULL.format(Path("out") / "00-seed42.png") + "\n")
    assert [line for line in err.splitlines() if line.startswith("error")] == [err.splitlines()[-1]]
    assert image.read_bytes() == previous
    assert _temporary_files(tmp_path / "out") == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_folder_that_cannot_be_written_is_one_line_too(tmp_path, disk, monkeypatch, capsys, code):
    monkeypatch.chdir(tmp_path)
    shutil.copy(bad_files.SAMPLE, "me.jpg")
    disk("create", code)
    assert main(["face", "me.jpg", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {Path('out') / 'me-faces.png'} cannot be written here ({os.strerror(code)}")
    assert len(err.splitlines()) == 1


def test_a_file_in_place_of_the_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(bad_files.SAMPLE, "me.jpg")
    Path("out").write_text("not a folder")
    assert main(["face", "me.jpg", "--out", "out/faces"]) == 2
    assert capsys.readouterr().err == (f"error: {Path('out/faces/me-faces.png')} cannot be written: out is a file, "
                                       "not a folder. Choose another output path, or move that file away.\n")
    assert main(["generate", "a photo of alice", "--identity", str(_alice(tmp_path)), "-n", "1", "--steps", "1",
                 "--out", "out"]) == 2
    assert capsys.readouterr().err == ("error: out is a file, not a folder. Choose another output path, or move "
                                       "that file away.\n")  # said before the model is loaded and the picture drawn


def _alice(folder: Path) -> Path:
    return bad_files.identity("alice").save(folder / "alice.safetensors")
