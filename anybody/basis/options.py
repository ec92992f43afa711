"""How a celeb basis is built, as plain data (importable without torch, for the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BasisOptions:
    """How the basis is built. The defaults are anybody's; see the module docstring for the reference's."""

    alignment: Literal["words", "positions"] = "words"
    max_components: int = 512
    dedupe: bool = True
    names_file: str | None = None  # a names file (one name a line, as `basis filter` writes); None: the shipped list
