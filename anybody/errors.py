"""The project's own error type: a problem the user can fix, said in one line.

Every failure a user can cause (a bad photo, a wrong model path, a broken identity file) is raised as an
`AnybodyError` carrying the problem and the fix; the CLI prints it as one line and exits non-zero,
without a traceback. Anything else that escapes is a bug in anybody.
"""

from __future__ import annotations

import math
import re


class AnybodyError(Exception):
    """A problem caused by input or environment, with the fix the user should apply."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".") if fix else None
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.problem}. {self.fix}." if self.fix else f"{self.problem}."


class PhotoError(AnybodyError):
    """The photo cannot be read, or holds no usable face."""


class ModelError(AnybodyError):
    """The base model cannot be found, loaded or used."""


class IdentityError(AnybodyError):
    """An identity (name, file or library entry) is missing, invalid or does not fit the model."""


class UsageError(AnybodyError):
    """An argument is out of range or inconsistent with another."""


class TrainingError(AnybodyError):
    """Learning cannot go on (for example the loss stopped being finite)."""


def out_of_memory(error: BaseException) -> AnybodyError | None:
    """PyTorch's out-of-memory failures (CUDA, MPS, the CPU allocator) as one line with the fixes; None for
    any other error. They are the user's to fix, since what fits depends on their machine and settings."""
    text = str(error)
    known = "out of memory" in text.lower() or "can't allocate memory" in text
    if not (isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and known)):
        return None
    asked = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]iB|\d+ bytes)", text)
    amount = asked.group(1) if asked else ""
    if amount.endswith(" bytes"):
        amount = f"{int(amount.split()[0]) / 2**30:,.1f} GiB"
    return AnybodyError(f"Out of memory{f' (it tried to allocate {amount} more)' if amount else ''}",
                        "Draw fewer images at once (--batch-size 1) or smaller ones (--height, --width), or use "
                        "--dtype fp16; when learning, lower --batch-size or add --gradient-checkpointing")


class Interrupted(TrainingError):
    """Learning was stopped by the user; the checkpoint on disk can be resumed (the CLI exits 130)."""


def summarize(error: BaseException, limit: int = 160) -> str:
    """The reason inside a library's exception as one bounded, printable line, for "cannot be read (...)"
    messages: parsers of hostile bytes say a lot, and torch wraps its reason in advice to unpickle anyway.
    A reason over `limit` characters is cut between two words, with "…" where the rest was."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split(". ")[0] if lines else ""
    if len(first) < 24:  # "101" or "" alone says nothing; the error's kind says a little
        first = f"{type(error).__name__}: {first}" if first else type(error).__name__
    printable = "".join(c if c.isprintable() else "?" for c in first)
    if len(printable) <= limit:
        return printable
    return printable[:limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:(") + "…"  # cut between words, and say so


def require_at_least(value: float, minimum: float, what: str, flag: str, example: object) -> None:
    """The one wording of "this number is too small" (also refuses NaN)."""
    if not value >= minimum:
        raise UsageError(f"The {what} must be at least {minimum:g} (got {value})",
                         f"Pass {flag} {example}, for example")


def require_steps(value: float, flag: str, example: object, kind: str = "") -> None:
    """The one wording of "too few steps" (learning, drawing, evaluating): "The number of steps must be at
    least 1 (got 0)"; `kind` says which steps where a command has two ("drawing")."""
    require_at_least(value, 1, f"number of {kind} steps" if kind else "number of steps", flag, example)


def require_finite(value: float, what: str, flag: str, example: object, *, positive: bool = False) -> None:
    """The one wording of "this number must be finite" (positive, or 0 or more)."""
    if not (0 < value < math.inf if positive else 0 <= value < math.inf):  # also False for NaN
        kind = "a finite positive number" if positive else "a finite number, 0 or more"
        raise UsageError(f"The {what} must be {kind} (got {value})", f"Pass {flag} {example}, for example")


def misuse(problem: str, fix: str, kind: type[Exception] = ValueError) -> Exception:
    """A programming mistake against the package's own API (not something a user typed): a ValueError (or
    `kind`, e.g. RuntimeError for a call out of order) in the same "problem. fix." wording. The CLI does not
    print these as advice: they are bugs, shown with their traceback."""
    return kind(f"{problem.rstrip('.')}. {fix.rstrip('.')}.")
