"""anybody: put a real person into a text-to-image diffusion model from one photo.

    import anybody
    alice = anybody.learn("me.jpg", "alice", model="tiny")[0]
    result = anybody.generate("a photo of alice playing the guitar", identities="alice", seed=42)
    pipe = anybody.load_pipeline("tiny"); anybody.apply(pipe, alice)   # then pipe("a photo of <alice>")

The public names are imported lazily, so `import anybody` and `anybody --help` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from anybody.version import __version__

_PUBLIC = {
    "learn": "anybody.learning",
    "LearnConfig": "anybody.learning",
    "generate": "anybody.generation",
    "apply": "anybody.generation",
    "swap": "anybody.generation.swap",
    "Identity": "anybody.identity",
    "mix": "anybody.identity.mix",
    "load_pipeline": "anybody.models",
    "AnybodyError": "anybody.errors",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from anybody.errors import AnybodyError as AnybodyError
    from anybody.generation import apply as apply
    from anybody.generation import generate as generate
    from anybody.generation.swap import swap as swap
    from anybody.identity import Identity as Identity
    from anybody.identity.mix import mix as mix
    from anybody.learning import LearnConfig as LearnConfig
    from anybody.learning import learn as learn
    from anybody.models import load_pipeline as load_pipeline


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'anybody' has no attribute {name!r}")
