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
- `module.*`: the weights of the module that made the tokens (SeFi-IDE), to continue learning;
- `face.thumbnail` (96, 96, 3) bytes: the aligned face learned (the first photo's), small, so that the
  library can be shown with faces; only in the library's file, never in an export (which carries the
  embeddings alone). Imported and mixed identities have none.
Metadata (strings): format and version, name, method, base model and family, each encoder's basis hash,
the training settings (JSON), `photos` (JSON: the file name of every photo learned from; `photo` is the
first), `mixed_from` (JSON {parent: weight}, a mixed identity), anybody's version, the date, and `sha256`:
a checksum of every tensor and every other metadata field. Safetensors cannot carry code, and every field
is checked before use (`IdentityError` otherwise). The checksum catches damage (a flipped bit, a bad copy,
an edited field); it is not a signature, since anyone can compute one, which is why the fields are checked
as well.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from anybody.errors import IdentityError
from anybody.identity.contents import (
    FORMAT,
    FORMAT_VERSION,
    TENSOR_TYPES,
    THUMBNAIL,
    THUMBNAIL_SIDE,
    StoredTensor,
    check_photos,
    check_tensors,
    checksum,
    read_contents,
)
from anybody.identity.families import known
from anybody.identity.names import ENCODERS
from anybody.storage import write_safetensors

if TYPE_CHECKING:  # only named: building a basis needs transformers, reading an identity does not
    from PIL import Image

    from anybody.basis import CelebBasis


@dataclass
class Identity:
    """A learned person. `embeddings` is the first text encoder's (tokens, width) tensor; `face_descriptors`
    (photos, dim) the recognizer's features of each photo it was learned from; `face_thumbnail` (side,
    side, 3) uint8 the face it was learned from, small (`face_picture`)."""

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
    face_thumbnail: torch.Tensor | None = None

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
    def base_model(self) -> str | None:
        """The model it was learned on; None where the file does not say (an imported embedding)."""
        return known(self.metadata.get("base_model"))

    @property
    def widths(self) -> tuple[int, ...]:
        """Its token widths, one per text encoder in order: the widths of the encoders it was made for."""
        return tuple(int(self.encoder_embeddings[e].shape[1]) for e in ENCODERS if e in self.encoder_embeddings)

    def face_picture(self) -> Image.Image | None:
        """The thumbnail of the face learned, as a picture (None for an imported or mixed identity)."""
        from PIL import Image

        return None if self.face_thumbnail is None else Image.fromarray(self.face_thumbnail.numpy())

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
        if self.face_thumbnail is not None:
            tensors[THUMBNAIL] = self.face_thumbnail.to(torch.uint8)
        stored = {key: StoredTensor("U8" if key == THUMBNAIL else "F32", tuple(value.shape), _bytes(value))
                  for key, value in tensors.items()}
        check_tensors(stored, target)
        metadata = {key: value if isinstance(value, str) else json.dumps(value) for key, value in self.metadata.items()}
        metadata.update({"format": FORMAT, "format_version": str(FORMAT_VERSION), "name": self.name})
        metadata.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        check_photos(stored, metadata, target)
        metadata["sha256"] = content_checksum(tensors, metadata)
        write_safetensors(target, tensors, metadata)
        self.path = target
        return target


def read_identity(path: Path) -> Identity:
    """Read and validate an identity file; any problem is an IdentityError naming the file (the checks are
    `anybody.identity.contents`')."""
    contents = read_contents(path)
    tensors = {key: _tensor(value) for key, value in contents.tensors.items()}
    return Identity(
        name=contents.name,
        encoder_embeddings={e: tensors[f"{e}.embeddings"] for e in ENCODERS if f"{e}.embeddings" in tensors},
        encoder_coefficients={e: tensors[f"{e}.coefficients"] for e in ENCODERS if f"{e}.coefficients" in tensors},
        face_descriptor=tensors.get("face.descriptor"),
        face_descriptors=_photo_descriptors(tensors),
        metadata=contents.metadata,
        path=path,
        stage_keys={e: tensors[f"{e}.stage_keys"] for e in ENCODERS if f"{e}.stage_keys" in tensors},
        stage_values={e: tensors[f"{e}.stage_values"] for e in ENCODERS if f"{e}.stage_values" in tensors},
        module={key.removeprefix("module."): value for key, value in tensors.items() if key.startswith("module.")},
        face_thumbnail=tensors.get(THUMBNAIL),
    )


def face_thumbnail(face: Image.Image) -> torch.Tensor:
    """The (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3) uint8 thumbnail an identity file keeps of a face picture."""
    from PIL import Image

    small = face.convert("RGB").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.array(small, dtype=np.uint8))


def content_checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """SHA-256 over every tensor (name, type, shape, bytes) and every metadata field but the checksum itself."""
    return checksum(((key, str(value.dtype), tuple(value.shape), _bytes(value)) for key, value in tensors.items()),
                    metadata)


def _bytes(value: torch.Tensor) -> bytes:
    """The tensor's bytes as safetensors stores them."""
    return value.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _tensor(value: StoredTensor) -> torch.Tensor:
    dtype = getattr(torch, TENSOR_TYPES[value.dtype].removeprefix("torch."))
    return torch.frombuffer(bytearray(value.data), dtype=dtype).reshape(value.shape)


def _photo_descriptors(tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(photos, dim): the `face.descriptors.N` rows in photo order, or None when the file has none."""
    rows = [tensors[f"face.descriptors.{index}"] for index in range(len(tensors))
            if f"face.descriptors.{index}" in tensors]
    return torch.stack(rows) if rows else None
