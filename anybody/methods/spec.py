"""What the command line, the web app and the configuration know of a method without importing torch.

A `Method` is plain data: its name, a one-line summary for help texts, the `LearnConfig` settings it
changes (its paper's defaults), and where its `Learner` class lives, imported only when learning starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anybody.methods.learner import Learner


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    learner: str  # "module:Class" of its Learner
    defaults: Mapping[str, object] = field(default_factory=dict)  # LearnConfig fields it sets otherwise

    def learner_class(self) -> type[Learner]:
        module, _, name = self.learner.partition(":")
        return getattr(import_module(module), name)
