"""A Hugging Face cache on disk, laid out as huggingface_hub writes it, for tests that must run without a network.

    <cache>/models--<owner>--<name>/blobs/<etag>            each file's bytes, once
    <cache>/models--<owner>--<name>/snapshots/<commit>/...  the repository's tree, links to the blobs
    <cache>/models--<owner>--<name>/refs/main               the commit `main` points to
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def add_repo(cache: Path, repo_id: str, folder: Path, *, keep: Callable[[str], bool] = lambda name: True,
             ref: str = "main") -> Path:
    """Put the files of `folder` (those `keep` accepts, by "/"-separated relative path) into `cache` as the
    repository `repo_id`; the snapshot folder. Blobs are named by their SHA-256, as LFS files' etags are."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if not path.is_file() or not keep(name):
            continue
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return snapshot
