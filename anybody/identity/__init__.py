"""Identities: names and tokens, the identity file, and the library of learned people."""

from typing import TYPE_CHECKING

from anybody.identity.library import library_names, resolve_identity
from anybody.identity.names import identity_path, require_free, rewrite_prompt, token_strings, validate_name
from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.identity.file import Identity, read_identity

__all__ = ["Identity", "identity_path", "library_names", "read_identity", "require_free", "resolve_identity",
           "rewrite_prompt", "token_strings", "validate_name"]
__getattr__ = lazy_exports(__name__, {"Identity": "file", "read_identity": "file"})
