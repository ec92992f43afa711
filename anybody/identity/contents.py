"""Reading and checking an identity file without torch: its fields, its tensors as stored, its checksum.

Every check an identity file gets happens here, on the bytes as safetensors stores them (numpy checks the
values are finite), so that `anybody identities` lists, shows and removes identities without importing
torch, which would cost seconds; `anybody.identity.file` turns the checked contents into an `Identity`.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, deserialize

from anybody.errors import IdentityError, summarize
from anybody.identity.names import ENCODERS, validate_name

FORMAT = "anybody-identity"
FORMAT_VERSION = 3
"""Version 2 added the `sha256` checksum; version 1 files (anybody 0.1.0 before it) are read without one.
Version 3 added `face.thumbnail` (readers before it would refuse its byte type, so they are told to upgrade)."""
MAX_FILE_BYTES = 256 * 2**20
MAX_PHOTOS = 1000
"""The most photos an identity file may list (far more than anyone learns from; keeps a crafted file small)."""
FLOAT_TYPES = {"F32": "torch.float32", "F16": "torch.float16", "BF16": "torch.bfloat16", "F64": "torch.float64"}
"""The tensor types an identity file may hold, by their safetensors names, with torch's names for them (which
the checksum covers). float8 types are refused: they cannot even be checked for finiteness."""
_NUMPY_TYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}
THUMBNAIL = "face.thumbnail"
"""The small picture of the face learned, (side, side, 3) RGB bytes: what the web app's library shows. Raw
pixels, not a PNG, so that reading a file never runs an image decoder on bytes someone else wrote."""
THUMBNAIL_SIDE = 96
THUMBNAIL_SIDES = range(16, 257)
"""The sides a thumbnail may have: a crafted file cannot make the reader hold a large picture."""
TENSOR_TYPES = {**FLOAT_TYPES, "U8": "torch.uint8"}
"""Every tensor type an identity file may hold: the float types, and bytes for the thumbnail alone."""


@dataclass(frozen=True)
class StoredTensor:
    """A tensor as a safetensors file stores it: its type name ("F32", "BF16", ...), shape and bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def finite_floats(self) -> bool:
        """Whether it is of a float type anybody reads and holds no NaN or infinity."""
        if self.dtype == "BF16":  # numpy has no bfloat16: all exponent bits set is NaN or infinity
            return not bool(((np.frombuffer(self.data, dtype="<u2") & 0x7F80) == 0x7F80).any())
        if self.dtype not in _NUMPY_TYPES:
            return False
        return bool(np.isfinite(np.frombuffer(self.data, dtype=_NUMPY_TYPES[self.dtype])).all())


@dataclass(frozen=True)
class IdentityContents:
    """A checked identity file: `metadata` with its JSON fields decoded, `fields` as stored (strings)."""

    path: Path
    name: str
    metadata: dict[str, object]
    fields: dict[str, str]
    tensors: dict[str, StoredTensor]

    def shapes(self, kind: str) -> dict[str, tuple[int, ...]]:
        """{encoder: shape} of one kind of tensor ("embeddings", "coefficients"), in the encoders' order."""
        return {e: self.tensors[f"{e}.{kind}"].shape for e in ENCODERS if f"{e}.{kind}" in self.tensors}


def read_contents(path: Path) -> IdentityContents:
    """Read and check an identity file; any problem is an IdentityError naming the file."""
    if not path.is_file():
        raise IdentityError(f"The identity file {path} does not exist", "Check the path or the name")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise IdentityError(f"{path} is too large to be an identity file", "Check that it is the right file")
    try:
        data = path.read_bytes()
        tensors = {key: StoredTensor(spec["dtype"], tuple(spec["shape"]), spec["data"])
                   for key, spec in deserialize(data)}
        (length,) = struct.unpack("<Q", data[:8])  # the header deserialize has just validated
        fields = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise IdentityError(f"{path} is not a readable identity file ({summarize(error)})",
                            "It may be truncated or of another format: learn it again, or use anybody import",
                            ) from error
    if fields.get("format") != FORMAT:
        raise IdentityError(f"{path} is not an anybody identity file",
                            "To use a textual-inversion embedding, import it: anybody import FILE --name NAME")
    version = fields.get("format_version", "")
    if not (version.isascii() and version.isdigit()) or int(version) > FORMAT_VERSION:  # "²".isdigit() is True
        raise IdentityError(f"{path} has identity format version {version!r}; this anybody reads up to "
                            f"{FORMAT_VERSION}", "Upgrade anybody (pip install -U anybody)")
    check_tensors(tensors, path)
    check_photos(tensors, fields, path)
    stored = ((key, TENSOR_TYPES[value.dtype], value.shape, value.data) for key, value in tensors.items())
    if int(version) >= 2 and fields.get("sha256") != checksum(stored, fields):
        raise IdentityError(f"{path} is damaged: its contents do not match its checksum",
                            "Restore it from a copy, or learn the identity again")
    metadata: dict[str, object] = {}
    for key, value in fields.items():
        try:
            metadata[key] = json.loads(value) if value[:1] in "{[" else value
        except (ValueError, RecursionError) as error:  # bad JSON, or "[[[[..." nested past Python's stack
            raise IdentityError(f"{path} has damaged metadata ({key})", "Learn the identity again") from error
    name = validate_name(str(fields.get("name", "")))
    return IdentityContents(path=path, name=name, metadata=metadata, fields=fields, tensors=tensors)


def checksum(tensors: Iterable[tuple[str, str, Sequence[int], bytes]], fields: dict[str, str]) -> str:
    """SHA-256 over every tensor (name, torch's type name, shape, bytes), in name order, and every metadata
    field but the checksum itself."""
    digest = hashlib.sha256()
    for key, dtype, shape, data in sorted(tensors, key=lambda tensor: tensor[0]):
        digest.update(json.dumps([key, dtype, list(shape)]).encode())
        digest.update(data)
    digest.update(json.dumps({key: value for key, value in fields.items() if key != "sha256"}, sort_keys=True).encode())
    return digest.hexdigest()


def check_photos(tensors: dict[str, StoredTensor], fields: dict[str, str], path: Path) -> None:
    """The photo list and the per-photo descriptors agree: `face.descriptors.0` to `.N-1`, one per name in the
    `photos` field (a JSON list of at most MAX_PHOTOS file names, each at most 255 characters long), all of
    the width of `face.descriptor`."""
    indices = [key.removeprefix("face.descriptors.") for key in tensors if key.startswith("face.descriptors.")]
    if sorted(indices) != sorted(str(index) for index in range(len(indices))):
        raise IdentityError(f"{path} has per-photo descriptors that are not numbered 0 to {len(indices) - 1}",
                            "Learn the identity again")
    widths = {value.shape[0] for key, value in tensors.items() if key.startswith("face.descriptor")}
    if len(widths) > 1:
        raise IdentityError(f"{path} has face descriptors of different widths", "Learn the identity again")
    if "photos" not in fields:
        if indices:
            raise IdentityError(f"{path} has per-photo descriptors but no photo list", "Learn the identity again")
        return
    try:
        photos = json.loads(fields["photos"])
    except (ValueError, RecursionError):
        photos = None
    names_ok = isinstance(photos, list) and all(isinstance(name, str) and len(name) <= 255 for name in photos)
    if not names_ok or len(photos) > MAX_PHOTOS or (indices and len(photos) != len(indices)):
        raise IdentityError(f"{path} has a damaged photo list", "Learn the identity again")


def check_tensors(tensors: dict[str, StoredTensor], path: Path) -> None:
    """Every tensor is one anybody writes, of a float type (the thumbnail: bytes), finite, of the shape its
    name says, and the encoders' token counts and per-stage tokens agree."""
    embeddings = {key: value for key, value in tensors.items() if key.endswith(".embeddings")}
    if "text_encoder.embeddings" not in embeddings:
        raise IdentityError(f"{path} holds no token embeddings", "Learn the identity again")
    for key, value in tensors.items():
        if key == THUMBNAIL:
            check_thumbnail(value, path)
            continue
        encoder, _, kind = key.partition(".")
        if encoder not in (*ENCODERS, "face", "module"):
            raise IdentityError(f"{path} holds an unexpected tensor {key!r}", "Learn the identity again")
        if not value.finite_floats():
            raise IdentityError(f"{path} holds non-finite or non-float values in {key}", "Learn the identity again")
        dims = len(value.shape)
        expected_dims = {"face": 1, "module": dims}.get(encoder, 3 if kind.startswith("stage_") else 2)
        if dims != expected_dims or math.prod(value.shape) == 0:
            raise IdentityError(f"{path} has a tensor {key} of shape {value.shape}", "Learn the identity again")
    counts = {value.shape[0] for value in embeddings.values()}
    if len(counts) != 1:
        raise IdentityError(f"{path} has encoders with different token counts", "Learn the identity again")
    tokens = next(iter(counts))
    for key, value in tensors.items():
        if key.endswith(".coefficients") and value.shape[0] != tokens:
            raise IdentityError(f"{path} has coefficients for a different number of tokens", "Learn it again")
        if ".stage_" in key:
            own = embeddings.get(key.split(".")[0] + ".embeddings")
            width = -1 if own is None else own.shape[1]
            partner = key.replace("stage_keys", "stage_values") if "keys" in key else key.replace("values", "keys")
            if value.shape[1:] != (tokens, width) or partner not in tensors or tensors[partner].shape != value.shape:
                raise IdentityError(f"{path} has per-stage tokens {key} that do not match its embeddings",
                                    "Learn the identity again")


def check_thumbnail(value: StoredTensor, path: Path) -> None:
    """The face thumbnail is a square RGB picture of bytes, of a side within THUMBNAIL_SIDES."""
    side = value.shape[0] if value.shape else 0
    if value.dtype != "U8" or value.shape != (side, side, 3) or side not in THUMBNAIL_SIDES:
        raise IdentityError(f"{path} has a face thumbnail of type {value.dtype} and shape {value.shape} (anybody "
                            f"writes {THUMBNAIL_SIDE}x{THUMBNAIL_SIDE}x3 bytes)", "Learn the identity again")
