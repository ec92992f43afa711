"""`anybody.storage`: a file or folder is either whole under its name or not there (files: the full-disk,
permission and SIGKILL cases are in tests/robustness)."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from PIL import Image

import anybody.storage
from anybody.errors import AnybodyError
from anybody.storage import atomic_folder, make_folder, write_text, write_with


def _hidden(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_a_folder_appears_whole_under_its_name(tmp_path):
    target = tmp_path / "models" / "tiny"
    with atomic_folder(target) as staging:
        (staging / "unet").mkdir()
        (staging / "unet" / "weights.bin").write_bytes(b"w" * 1000)
        (staging / "model_index.json").write_text("{}")
        assert not target.exists()  # nothing under the name while it is being written
    assert (target / "unet" / "weights.bin").read_bytes() == b"w" * 1000
    assert _hidden(target.parent) == []


def test_a_folder_whose_writer_fails_leaves_nothing(tmp_path):
    target = tmp_path / "tiny"
    with pytest.raises(RuntimeError, match="save_pretrained broke"), atomic_folder(target) as staging:
        (staging / "half.bin").write_bytes(b"half")
        raise RuntimeError("save_pretrained broke")
    assert not target.exists() and _hidden(tmp_path) == []


def test_a_folder_made_meanwhile_by_another_process_is_kept(tmp_path):
    target = tmp_path / "tiny"
    with atomic_folder(target) as staging:
        (staging / "ours.txt").write_text("ours")
        target.mkdir()  # another process finished first
        (target / "theirs.txt").write_text("theirs")
    assert sorted(path.name for path in target.iterdir()) == ["theirs.txt"] and _hidden(tmp_path) == []


def test_a_full_disk_while_syncing_a_folder_is_one_clear_error(tmp_path, monkeypatch):
    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "tiny"
    monkeypatch.setattr(anybody.storage.os, "fsync", full)
    with pytest.raises(AnybodyError, match="The disk is full"), atomic_folder(target) as staging:
        (staging / "weights.bin").write_bytes(b"w")
    assert not target.exists() and _hidden(tmp_path) == []


def test_an_output_folder_in_place_of_a_file_is_named(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(AnybodyError, match=r"out is a file, not a folder"):
        make_folder(tmp_path / "out")
    with pytest.raises(AnybodyError, match=r"out is a file, not a folder"):
        write_text(tmp_path / "out" / "sheet.txt", "x")
    assert make_folder(tmp_path / "new" / "deeper").is_dir()


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027, 0o077])
def test_written_files_and_folders_get_the_mode_the_umask_gives_new_ones(tmp_path, umask):
    """Not tempfile's private 0600/0700, which a rename would keep: another user's A1111 reads exports."""
    previous = os.umask(umask)
    try:
        write_text(tmp_path / "notes.txt", "x")
        write_text(tmp_path / "notes.txt", "replaced")  # a replaced file too
        write_with(tmp_path / "image.png", lambda stream: Image.new("RGB", (4, 4)).save(stream, format="PNG"))
        with atomic_folder(tmp_path / "model") as staging:
            (staging / "model_index.json").write_text("{}")
        (tmp_path / "plain.txt").write_text("what open() makes")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "plain.txt") == 0o666 & ~umask
    for name in ("notes.txt", "image.png", "model/model_index.json"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name
    assert _mode(tmp_path / "model") == 0o777 & ~umask
    assert _hidden(tmp_path) == []
