"""Identity names: what a name may be, and the tokens it owns. Plain text rules, no model library.

An identity called "alice" with n vectors owns the tokens `<alice>`, `<alice>_1`, ... `<alice>_{n-1}`:
the naming diffusers' `load_textual_inversion` uses for multi-vector embeddings. anybody's own prompts say
"alice" as a whole word, which `rewrite_prompt` turns into "<alice>" (text only, so a prompt that does not
name its identity is refused before any model library is imported).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from anybody import settings
from anybody.errors import IdentityError, UsageError

SUFFIX = ".safetensors"
ENCODERS = ("text_encoder", "text_encoder_2")  # the text encoders an identity can hold tokens for
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
MAX_NAME_LENGTH = 40
# Words the learning prompts themselves use: an identity with one of these names would be confused with them.
_PROMPT_WORDS = """a an the of in on at with and or my one photo picture rendering cropped close-up closeup face
    person man woman bright dark good clean dirty cool weird small large nice rendition illustration depiction"""
RESERVED_WORDS = frozenset(_PROMPT_WORDS.split())


def validate_name(name: str) -> str:
    """The identity name as stored (lower case), or an IdentityError saying what is wrong and what to do."""
    if not isinstance(name, str) or not name.strip():
        raise IdentityError("The identity name is empty", "Give a short name such as --name alice")
    cleaned = name.strip()
    if len(cleaned) > MAX_NAME_LENGTH:
        raise IdentityError(f"The identity name is {len(cleaned)} characters long (at most {MAX_NAME_LENGTH})",
                            "Choose a shorter name")
    lowered = cleaned.lower()
    if not NAME_PATTERN.fullmatch(lowered):
        raise IdentityError(  # repr shows control characters escaped once: 'ali\x1bce', not 'ali\\x1bce'
            f"The identity name {cleaned!r} has characters a name cannot have",
            "Use ASCII letters (a-z), digits, '-' and '_' only, starting with a letter (for example alice or bob_2)",
        )
    if lowered in RESERVED_WORDS:
        raise IdentityError(f"The name {lowered!r} is a word anybody's own prompts use",
                            f"Choose another, for example {lowered}_1 or a first name")
    return lowered


def token_strings(name: str, count: int) -> list[str]:
    """The n token strings of an identity, in diffusers' multi-vector naming."""
    base = f"<{name}>"
    return [base] + [f"{base}_{index}" for index in range(1, count)]


def rewrite_prompt(prompt: str, names: Iterable[str], expand_tokens: dict[str, int] | None = None) -> str:
    """Replace each identity name used as a whole word (any case) by its token.

    With `expand_tokens` ({name: n}) the name becomes all n tokens, for code that tokenizes directly;
    without, it becomes the first token, which diffusers' pipelines expand themselves.
    """
    for name in sorted(set(names), key=len, reverse=True):
        tokens = token_strings(name, expand_tokens[name]) if expand_tokens else [f"<{name}>"]
        pattern = re.compile(rf"(?<![\w<>-]){re.escape(name)}(?![\w>-])", re.IGNORECASE)
        prompt = pattern.sub(" ".join(tokens), prompt)
    return prompt


def identity_path(name: str, library: str | os.PathLike[str] | None = None) -> Path:
    """Where the identity `name` lives; a validated name can never leave the library folder."""
    return settings.library_folder(library) / f"{validate_name(name)}{SUFFIX}"


def check_distinct(names: Iterable[str]) -> None:
    """Refuse an identity named twice (the one wording of it, wherever several are named)."""
    seen: list[str] = []
    for name in names:
        if name in seen:
            raise UsageError(f"The identity {name} is given twice", "Name each identity once")
        seen.append(name)


def require_free(names: list[str], library: str | os.PathLike[str] | None, *, learning: bool = True) -> None:
    """Refuse names the library already has (the one wording of "name already taken")."""
    taken = [name for name in names if identity_path(name, library).exists()]
    if taken:
        again = "learn it again" if learning else "replace it"
        raise IdentityError(f"The library already has an identity called {', '.join(taken)}",
                            f"Choose another name (e.g. {taken[0]}_2), or pass --replace to {again}")
