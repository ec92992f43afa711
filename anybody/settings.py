"""Where anybody keeps its files, and which model it uses when none is named.

- `ANYBODY_HOME` (default `~/.anybody`): the identity library (`identities/`), the built-in tiny
  models (`models/`) and the celeb-basis cache (`bases/`).
- `ANYBODY_MODEL` (default `CompVis/stable-diffusion-v1-4`, the base model of both papers): the model
  `learn` and `basis` use when `--model` is not given.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"


def home() -> Path:
    return Path(os.environ.get("ANYBODY_HOME") or Path.home() / ".anybody").expanduser()


def default_model() -> str:
    return os.environ.get("ANYBODY_MODEL") or DEFAULT_MODEL


def library_folder(library: str | os.PathLike[str] | None = None) -> Path:
    return Path(library).expanduser() if library else home() / "identities"


def models_folder() -> Path:
    return home() / "models"


def bases_folder() -> Path:
    return home() / "bases"
