"""Every file anybody writes goes through `atomic_write`: temporary file, fsync, rename (`atomic_folder`
does the same for a folder another library writes, such as a built-in model).

A crash, a kill or a full disk at any moment leaves either the previous file or the new one, never a
half-written file: identity files, checkpoints, basis caches, images and reports alike.

Files and folders are created with the mode the umask gives any new one (0644 and 0755 under umask 022),
not `tempfile`'s private 0600/0700, which the rename would keep: an A1111 or ComfyUI running as another
user must be able to read an export. A stricter umask (077) keeps everything private.
"""

from __future__ import annotations

import errno
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from anybody.errors import AnybodyError

if TYPE_CHECKING:
    import torch


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; on success it replaces `path` in one rename.

    On any exception (a full disk included) the temporary file is removed and `path` is untouched.
    """
    target = Path(path)
    try:  # a full disk, a read-only folder or a file in the way can fail these two already
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = _new_beside(target, lambda path: os.open(path, _NEW_FILE, 0o666))
    except OSError as error:
        raise (_user_error(error, target) or error) from error
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        user_error = _user_error(error, target) if isinstance(error, OSError) else None
        if user_error is not None:
            raise user_error from error
        raise
    _sync_folder(target.parent)


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A whole folder written by another library (diffusers' `save_pretrained`): filled in a hidden staging
    folder beside `path`, every file synced, then renamed into place in one step, so a half-written folder
    is never seen under its name. If another process put `path` there meanwhile, theirs is kept."""
    target = Path(path)
    make_folder(target.parent)
    _, staging = _new_beside(target, lambda path: os.mkdir(path, 0o777))
    try:
        yield staging
        try:  # the data on disk before the name: a delayed-allocation full disk shows up here
            for file in (entry for entry in staging.rglob("*") if entry.is_file()):
                with open(file, "rb") as stream:
                    os.fsync(stream.fileno())
        except OSError as error:
            raise (_user_error(error, target) or error) from error
        for folder in (staging, *(entry for entry in staging.rglob("*") if entry.is_dir())):
            _sync_folder(folder)
        try:
            staging.rename(target)
        except OSError as error:
            if not target.is_dir():
                raise (_user_error(error, target) or error) from error
        _sync_folder(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


Created = TypeVar("Created")
# Like tempfile.mkstemp's flags: a new file only, never through a link, not inherited by child processes.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | \
    getattr(os, "O_BINARY", 0)


def _new_beside(target: Path, create: Callable[[Path], Created]) -> tuple[Created, Path]:
    """Create a hidden, uniquely named `.NAME.<random>.tmp` beside `target` with `create` (which must refuse
    an existing path, as O_EXCL and mkdir do), letting the umask set its mode as for any new file."""
    for _ in range(100):
        candidate = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            return create(candidate), candidate
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "No free temporary name", str(target))


def _user_error(error: OSError, target: Path) -> AnybodyError | None:
    """The write failures a user fixes (space, permissions, a file where a folder should be), in one line."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return AnybodyError(f"The disk is full: {target} was not written (any previous version is intact)",
                            "Free some space and run the command again")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AnybodyError(f"{target} cannot be written here ({error.strerror}; any previous version is intact)",
                            "Choose a folder you may write to (--out, --library or ANYBODY_HOME), or fix its "
                            "permissions")
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        blocking = next((path for path in (target, *target.parents) if path.exists() and not path.is_dir()),
                        error.filename)
        what = f"{target} is a file" if blocking == target else f"{target} cannot be written: {blocking} is a file"
        return AnybodyError(f"{what}, not a folder", "Choose another output path, or move that file away")
    return None


def make_folder(path: str | os.PathLike[str]) -> Path:
    """Create an output folder before minutes of work go into what it will hold, with a write's one-line errors."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise (_user_error(error, folder) or error) from error
    return folder


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], value: object) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_safetensors(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Save tensors (made contiguous, on the CPU) as one safetensors file, atomically."""
    from safetensors.torch import save as safetensors_bytes  # torch is imported only where tensors are written

    ready = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
    write_bytes(path, safetensors_bytes(ready, metadata=metadata))


def write_with(path: str | os.PathLike[str], save: Callable[[IO[bytes]], None]) -> None:
    """Atomically write whatever `save(stream)` produces (PIL's `image.save`, `torch.save`, ...)."""
    buffer = io.BytesIO()
    save(buffer)
    write_bytes(path, buffer.getvalue())
