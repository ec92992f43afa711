"""Lazy package exports: a package's public names are imported from their modules on first use.

Packages that would otherwise import torch, diffusers or dlib when merely named (`anybody --help`, the
library commands, argument checks) expose their names this way, so starting the CLI stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that imports `exports[name]` (a module path under `package`) on first use."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
