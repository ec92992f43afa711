"""What the command line, the web app and the configuration know of a method without importing torch.

A `Method` is plain data: its name, a one-line summary for help texts, the `LearnConfig` settings it
changes (its paper's defaults), and where its `Learner` class lives, imported only when learning starts
(`anybody.methods.learner.learner_class`). It names nothing above it: `LearnConfig` is built from these
facts, and the learners are built from a `LearnConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    learner: str  # "module:Class" of its Learner
    defaults: Mapping[str, object] = field(default_factory=dict)  # LearnConfig fields it sets otherwise
