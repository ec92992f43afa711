"""Learning methods, each in its own folder with the same shape (as PEFT's tuners):

    methods/<method>/__init__.py   METHOD: name, summary, paper defaults (plain data, no torch)
    methods/<method>/learner.py    the `Learner` that trains: what it builds, its optimizer, what it
                                   writes into the identity file

The learning loop (`anybody/learning/train.py`) only talks to the `Learner` interface
(`anybody/methods/learner.py`), so a new method is a new folder here and one line in `METHODS`.
"""

from __future__ import annotations

from anybody.errors import UsageError
from anybody.methods import celeb_basis, sefi, textual_inversion
from anybody.methods.spec import Method

METHODS: dict[str, Method] = {method.name: method for method in (celeb_basis.METHOD, sefi.METHOD,
                                                                  textual_inversion.METHOD)}
DEFAULT_METHOD = celeb_basis.METHOD.name


def get_method(name: str) -> Method:
    """The method called `name`, or a UsageError listing the known ones."""
    if name not in METHODS:
        raise UsageError(f"Unknown method {name!r}", f"Use --method {' or '.join(METHODS)}")
    return METHODS[name]


__all__ = ["DEFAULT_METHOD", "METHODS", "Method", "get_method"]
