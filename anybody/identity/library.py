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


LEARN_IT = "Learn it first (anybody learn PHOTO --name NAME), or pass the path to its .safetensors file"
CHECK_NAME = "Check the name against the library's names"
"""The fix for a name the library does not have, for someone removing or showing one (not to learn it)."""


def resolve_identity(name_or_path: str | os.PathLike[str], library: str | os.PathLike[str] | None = None, *,
                     fix: str = LEARN_IT) -> Path:
    """A path to an identity file given its library name or its path (`fix`: as for `library_file`)."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith(SUFFIX) or os.sep in text or candidate.is_file():
        if not candidate.is_file():
            raise IdentityError(f"The identity file {candidate} does not exist", "Check the path")
        return candidate
    return library_file(text, library, fix)


def library_file(name: str, library: str | os.PathLike[str] | None = None,
                 fix: str = LEARN_IT) -> Path:
    """The file of the identity called `name` in the library: a name only, never a path (what a caller that
    must not reach outside the library, like the web app, asks for). `fix` is said when there is none."""
    path = identity_path(name, library)
    if not path.is_file():
        known = library_names(library)
        listing = ", ".join(known) if known else "none yet"
        raise IdentityError(
            f"No identity called {name!r} in the library {settings.library_folder(library)} (known: {listing})", fix)
    return path
