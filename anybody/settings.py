"""Where anybody keeps its files, and which model it uses when none is named.

- `ANYBODY_HOME` (default `~/.anybody`): the identity library (`identities/`), the built-in tiny
  models (`models/`) and the celeb-basis cache (`bases/`).
- `ANYBODY_MODEL` (default `CompVis/stable-diffusion-v1-4`, the base model of both papers): the model
  `learn` and `basis` use when `--model` is not given, and the one that draws an identity that does not
  say which model it was made for (an imported embedding).
- `FAMILY_MODELS`: each family's own model, which draws such an identity when ANYBODY_MODEL is not set.
"""

from __future__ import annotations

import os
from pathlib import Path

FAMILY_MODELS = {"sd1": "CompVis/stable-diffusion-v1-4", "sd2": "stabilityai/stable-diffusion-2-1",
                 "sdxl": "stabilityai/stable-diffusion-xl-base-1.0"}
DEFAULT_MODEL = FAMILY_MODELS["sd1"]


def home() -> Path:
    return Path(os.environ.get("ANYBODY_HOME") or Path.home() / ".anybody").expanduser()


def chosen_model() -> str | None:
    """The model ANYBODY_MODEL names, if it names one."""
    return os.environ.get("ANYBODY_MODEL") or None


def default_model() -> str:
    return chosen_model() or DEFAULT_MODEL


def library_folder(library: str | os.PathLike[str] | None = None) -> Path:
    return Path(library).expanduser() if library else home() / "identities"


def models_folder() -> Path:
    return home() / "models"


def bases_folder() -> Path:
    return home() / "bases"
