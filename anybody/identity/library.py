"""The identity library: a folder of `NAME.safetensors` files (default `ANYBODY_HOME/identities`)."""

from __future__ import annotations

import os
from pathlib import Path

from anybody import settings
from anybody.errors import IdentityError
from anybody.identity.names import SUFFIX, identity_path


def library_names(library: str | os.PathLike[str] | None = None) -> list[str]:
    folder = settings.library_folder(library)
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob(f"*{SUFFIX}") if not path.name.startswith("."))


def resolve_identity(name_or_path: str | os.PathLike[str], library: str | os.PathLike[str] | None = None) -> Path:
    """A path to an identity file given its library name or its path."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith(SUFFIX) or os.sep in text or candidate.is_file():
        if not candidate.is_file():
            raise IdentityError(f"The identity file {candidate} does not exist", "Check the path")
        return candidate
    path = identity_path(text, library)
    if not path.is_file():
        known = library_names(library)
        listing = ", ".join(known) if known else "none yet"
        raise IdentityError(
            f"No identity called {text!r} in the library {settings.library_folder(library)} (known: {listing})",
            "Learn it first (anybody learn PHOTO --name NAME), or pass the path to its .safetensors file",
        )
    return path
