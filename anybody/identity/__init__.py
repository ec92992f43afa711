"""Identities: names and tokens, the identity file, and the library of learned people."""

from anybody.identity.file import Identity, read_identity
from anybody.identity.library import identity_path, library_names, resolve_identity
from anybody.identity.tokens import rewrite_prompt, token_strings, validate_name

__all__ = ["Identity", "identity_path", "library_names", "read_identity", "resolve_identity", "rewrite_prompt",
           "token_strings", "validate_name"]
