"""The identity file: one `.safetensors` per person, self-contained and safe to load.

Tensors, per text encoder `E` ("text_encoder", and "text_encoder_2" for SDXL):
- `E.embeddings` (tokens, width): the final token embeddings; enough to draw the person without anybody's
  basis, and what exports to other tools carry;
- `E.coefficients` (tokens, k): the celeb-basis coefficients they were made from (Celeb Basis);
- `E.stage_keys`, `E.stage_values` (stages, tokens, width): SeFi-IDE's per-stage key and value tokens;
  the denoising step picks the pair of its stage (`E.embeddings` is then the stages' mean value token,
  which plain textual-inversion tools cannot use as the person);
- `face.descriptor` (dim,): the face-recognition features of the photo, or the mean over the photos when
  the identity was learned from several (what readers before several photos expect);
- `face.descriptors.0`, `face.descriptors.1`, ... (dim,) each: the features of every photo, in the order of
  the `photos` metadata field (one-dimensional, so files stay readable by anybody before several photos);
- `module.*`: the weights of the module that made the tokens (SeFi-IDE), to continue learning.
Metadata (strings): format and version, name, method, base model and family, each encoder's basis hash,
the training settings (JSON), `photos` (JSON: the file name of every photo learned from; `photo` is the
first), `mixed_from` (JSON {parent: weight}, a mixed identity), anybody's version, the date, and `sha256`:
a checksum of every tensor and every other metadata field. Safetensors cannot carry code, and every field
is checked before use (`IdentityError` otherwise). The checksum catches damage (a flipped bit, a bad copy,
an edited field); it is not a signature, since anyone can compute one, which is why the fields are checked
as well.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open

from anybody.errors import IdentityError, summarize
from anybody.identity.names import ENCODERS, validate_name
from anybody.storage import write_safetensors

if TYPE_CHECKING:  # only named: building a basis needs transformers, reading an identity does not
    from anybody.basis import CelebBasis

FORMAT = "anybody-identity"
FORMAT_VERSION = 2
"""Version 2 added the `sha256` checksum; version 1 files (anybody 0.1.0 before it) are read without one."""
MAX_FILE_BYTES = 256 * 2**20
MAX_PHOTOS = 1000
"""The most photos an identity file may list (far more than anyone learns from; keeps a crafted file small)."""
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
"""The tensor types an identity file may hold (float8 types cannot even be checked for finiteness)."""


@dataclass
class Identity:
    """A learned person. `embeddings` is the first text encoder's (tokens, width) tensor; `face_descriptors`
    (photos, dim) the recognizer's features of each photo it was learned from."""

    name: str
    encoder_embeddings: dict[str, torch.Tensor]
    metadata: dict[str, object] = field(default_factory=dict)
    encoder_coefficients: dict[str, torch.Tensor] = field(default_factory=dict)
    face_descriptor: torch.Tensor | None = None
    face_descriptors: torch.Tensor | None = None
    path: Path | None = None
    stage_keys: dict[str, torch.Tensor] = field(default_factory=dict)
    stage_values: dict[str, torch.Tensor] = field(default_factory=dict)
    module: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def stages(self) -> int:
        """How many denoising stages have their own key/value tokens (0: one embedding for all steps)."""
        values = self.stage_values.get("text_encoder")
        return 0 if values is None else int(values.shape[0])

    @property
    def embeddings(self) -> torch.Tensor:
        return self.encoder_embeddings["text_encoder"]

    @property
    def coefficients(self) -> torch.Tensor | None:
        return self.encoder_coefficients.get("text_encoder")

    @property
    def token_count(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def method(self) -> str:
        return str(self.metadata.get("method", "unknown"))

    @property
    def base_model(self) -> str:
        return str(self.metadata.get("base_model", "unknown"))

    @property
    def photos(self) -> list[str]:
        """The file names of the photos it was learned from (none for an imported or mixed identity)."""
        photos = self.metadata.get("photos")
        if isinstance(photos, list):
            return [str(photo) for photo in photos]
        return [str(self.metadata["photo"])] if "photo" in self.metadata else []

    def embeddings_in(self, basis: CelebBasis, encoder: str = "text_encoder") -> torch.Tensor:
        """The embeddings rebuilt from the coefficients in `basis` (mean + c·B), after checking it is theirs.

        Coefficients only mean something in the basis they were learned in: another basis (another model,
        names list or build options) → IdentityError. The stored embeddings need no basis at all.
        """
        coefficients = self.encoder_coefficients.get(encoder)
        if coefficients is None:
            raise IdentityError(f"The identity {self.name!r} has no basis coefficients ({self.method})",
                                "Use its embeddings directly (identity.embeddings)")
        made_in = self.metadata.get(f"basis.{encoder}")
        if made_in != basis.key or coefficients.shape[-1] != basis.rank:
            raise IdentityError(
                f"The coefficients of {self.name!r} were made in basis {str(made_in)[:16]}, not in this one "
                f"({basis.key[:16]}: another model, names list or basis options)",
                "Use the identity's stored embeddings, or build the basis it was learned with",
            )
        return basis.embeddings(coefficients)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str], library: str | os.PathLike[str] | None = None) -> Identity:
        """An identity from the library by name, or from a file path."""
        from anybody.identity.library import resolve_identity

        return read_identity(resolve_identity(name_or_path, library))

    def save(self, path: str | os.PathLike[str] | None = None, library: str | os.PathLike[str] | None = None) -> Path:
        """Write the identity atomically (default: `NAME.safetensors` in the library)."""
        from anybody.identity.library import identity_path

        target = Path(path) if path else identity_path(self.name, library)
        tensors: dict[str, torch.Tensor] = {}
        for encoder, value in self.encoder_embeddings.items():
            tensors[f"{encoder}.embeddings"] = value.float()
        for encoder, value in self.encoder_coefficients.items():
            tensors[f"{encoder}.coefficients"] = value.float()
        for encoder, value in self.stage_keys.items():
            tensors[f"{encoder}.stage_keys"] = value.float()
        for encoder, value in self.stage_values.items():
            tensors[f"{encoder}.stage_values"] = value.float()
        for key, value in self.module.items():
            tensors[f"module.{key}"] = value.float()
        if self.face_descriptor is not None:
            tensors["face.descriptor"] = self.face_descriptor.float()
        for index, row in enumerate(self.face_descriptors if self.face_descriptors is not None else []):
            tensors[f"face.descriptors.{index}"] = row.float()
        _check_tensors(tensors, target)
        metadata = {key: value if isinstance(value, str) else json.dumps(value) for key, value in self.metadata.items()}
        metadata.update({"format": FORMAT, "format_version": str(FORMAT_VERSION), "name": self.name})
        metadata.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _check_photos(tensors, metadata, target)
        metadata["sha256"] = content_checksum(tensors, metadata)
        write_safetensors(target, tensors, metadata)
        self.path = target
        return target


def read_identity(path: Path) -> Identity:
    """Read and validate an identity file; any problem is an IdentityError naming the file."""
    if not path.is_file():
        raise IdentityError(f"The identity file {path} does not exist", "Check the path or the name")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise IdentityError(f"{path} is too large to be an identity file", "Check that it is the right file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise IdentityError(f"{path} is not a readable identity file ({summarize(error)})",
                            "It may be truncated or of another format: learn it again, or use anybody import",
                            ) from error
    if raw_metadata.get("format") != FORMAT:
        raise IdentityError(f"{path} is not an anybody identity file",
                            "To use a textual-inversion embedding, import it: anybody import FILE --name NAME")
    version = raw_metadata.get("format_version", "")
    if not (version.isascii() and version.isdigit()) or int(version) > FORMAT_VERSION:  # "²".isdigit() is True
        raise IdentityError(f"{path} has identity format version {version!r}; this anybody reads up to "
                            f"{FORMAT_VERSION}", "Upgrade anybody (pip install -U anybody)")
    _check_tensors(tensors, path)
    _check_photos(tensors, raw_metadata, path)
    if int(version) >= 2 and raw_metadata.get("sha256") != content_checksum(tensors, raw_metadata):
        raise IdentityError(f"{path} is damaged: its contents do not match its checksum",
                            "Restore it from a copy, or learn the identity again")
    metadata: dict[str, object] = {}
    for key, value in raw_metadata.items():
        try:
            metadata[key] = json.loads(value) if value[:1] in "{[" else value
        except (ValueError, RecursionError) as error:  # bad JSON, or "[[[[..." nested past Python's stack
            raise IdentityError(f"{path} has damaged metadata ({key})", "Learn the identity again") from error
    name = validate_name(str(raw_metadata.get("name", "")))
    return Identity(
        name=name,
        encoder_embeddings={e: tensors[f"{e}.embeddings"] for e in ENCODERS if f"{e}.embeddings" in tensors},
        encoder_coefficients={e: tensors[f"{e}.coefficients"] for e in ENCODERS if f"{e}.coefficients" in tensors},
        face_descriptor=tensors.get("face.descriptor"),
        face_descriptors=_photo_descriptors(tensors),
        metadata=metadata,
        path=path,
        stage_keys={e: tensors[f"{e}.stage_keys"] for e in ENCODERS if f"{e}.stage_keys" in tensors},
        stage_values={e: tensors[f"{e}.stage_values"] for e in ENCODERS if f"{e}.stage_values" in tensors},
        module={key.removeprefix("module."): value for key, value in tensors.items() if key.startswith("module.")},
    )


def content_checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 over every tensor (name, type, shape, bytes) and every metadata field but the checksum itself."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        value = tensors[key].detach().to("cpu").contiguous()
        digest.update(json.dumps([key, str(value.dtype), list(value.shape)]).encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    fields = {key: value for key, value in metadata.items() if key != "sha256"}
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return digest.hexdigest()


def _photo_descriptors(tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(photos, dim): the `face.descriptors.N` rows in photo order, or None when the file has none."""
    rows = [tensors[f"face.descriptors.{index}"] for index in range(len(tensors))
            if f"face.descriptors.{index}" in tensors]
    return torch.stack(rows) if rows else None


def _check_photos(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
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
    if "photos" not in metadata:
        if indices:
            raise IdentityError(f"{path} has per-photo descriptors but no photo list", "Learn the identity again")
        return
    try:
        photos = json.loads(metadata["photos"])
    except (ValueError, RecursionError):
        photos = None
    names_ok = isinstance(photos, list) and all(isinstance(name, str) and len(name) <= 255 for name in photos)
    if not names_ok or len(photos) > MAX_PHOTOS or (indices and len(photos) != len(indices)):
        raise IdentityError(f"{path} has a damaged photo list", "Learn the identity again")


def _check_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    embeddings = {key: value for key, value in tensors.items() if key.endswith(".embeddings")}
    if "text_encoder.embeddings" not in embeddings:
        raise IdentityError(f"{path} holds no token embeddings", "Learn the identity again")
    for key, value in tensors.items():
        encoder, _, kind = key.partition(".")
        if encoder not in (*ENCODERS, "face", "module"):
            raise IdentityError(f"{path} holds an unexpected tensor {key!r}", "Learn the identity again")
        if value.dtype not in FLOAT_DTYPES or not torch.isfinite(value).all():
            raise IdentityError(f"{path} holds non-finite or non-float values in {key}", "Learn the identity again")
        expected_dims = {"face": 1, "module": value.dim()}.get(encoder, 3 if kind.startswith("stage_") else 2)
        if value.dim() != expected_dims or value.numel() == 0:
            raise IdentityError(f"{path} has a tensor {key} of shape {tuple(value.shape)}", "Learn the identity again")
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
