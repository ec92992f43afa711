"""What a learning run is called and where its checkpoint lives, checked before anything heavy loads."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from anybody import settings
from anybody.errors import IdentityError, UsageError
from anybody.identity.names import require_free, validate_name
from anybody.learning.config import LearnConfig
from anybody.learning.photos import group_photos


def checkpoint_path(names: Sequence[str], library: str | os.PathLike[str] | None) -> Path:
    """The checkpoint of the run that learns `names` together (one file per run, beside the library)."""
    return settings.library_folder(library) / ".checkpoints" / f"{'+'.join(names)}.safetensors"


def check_names(photos: Sequence[object], names: str | Sequence[str], config: LearnConfig,
                library: str | os.PathLike[str] | None = None, *, resume: bool = False, replace: bool = False,
                restart: bool = False, same_person: bool = False) -> list[str]:
    """The names `learn` will save under, checked before anything heavy is loaded: safe characters, one per
    identity (per photo, or one for all the photos with `same_person`; see `group_photos`), not the class
    word of the learning prompts, not taken in the library (unless replacing or resuming the same
    identity), and no interrupted run of them that this one would silently overwrite."""
    if resume and restart:
        raise UsageError("--resume and --restart contradict each other",
                         "Pass --resume to continue the interrupted run, or --restart to discard it")
    given = [names] if isinstance(names, str) else list(names)
    names = [validate_name(name) for name in given]
    if same_person and len(names) != 1:
        raise UsageError(f"--same-person learns one identity from all the photos, but {_count(len(names), 'name')} "
                         "were given", "Give one name (--name alice), or leave out --same-person to learn one "
                         "identity per photo")
    groups = group_photos(photos, same_person)
    if len(groups) != len(names):
        nested = any(isinstance(item, (list, tuple)) for item in photos)
        counted = f"{_count(len(groups), 'group')} of photos" if nested else _count(len(photos), "photo")
        raise UsageError(f"{counted} and {_count(len(names), 'name')} were given",
                         "Give exactly one name per photo, e.g. --name alice,bob, or one name and --same-person "
                         "for several photos of one person")
    seen: dict[str, str] = {}
    for original, name in zip(given, names):
        if name in seen:
            spelled = "" if seen[name] == original else f" ({seen[name]} and {original}: names are kept in lower case)"
            raise UsageError(f"The name {name} is given twice{spelled}",
                             "Give each photo its own name, e.g. --name alice,bob")
        seen[name] = original
    if config.class_word.lower() in names:
        raise IdentityError(f"The name {config.class_word.lower()!r} is the class word of the learning prompts",
                            f"Choose another name, for example {config.class_word.lower()}_1")
    if not (replace or resume):  # resuming continues the same identity
        require_free(names, library)
    checkpoint = checkpoint_path(names, library)
    if resume and not checkpoint.is_file():
        raise UsageError(f"There is no checkpoint to resume for {', '.join(names)} ({checkpoint})",
                         "Run without --resume to start learning")
    if checkpoint.is_file() and not (resume or restart):
        raise UsageError(f"An interrupted run of {', '.join(names)} left a checkpoint ({checkpoint})",
                         "Pass --resume to continue it, or --restart to discard it and start again")
    return names


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
