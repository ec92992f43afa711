"""Import a textual-inversion embedding another tool wrote as an identity, never running code from the file.

`.safetensors` cannot carry code, and `.pt`/`.bin` are read only with `torch.load(..., weights_only=True)`,
which refuses anything but tensors and plain containers. Every problem with a file is an `IdentityError`
naming the file, the problem and the fix.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes

from anybody.errors import IdentityError, summarize
from anybody.identity.families import family_from_widths
from anybody.identity.file import Identity
from anybody.identity.formats import (
    DIFFUSERS_FILE,
    DIFFUSERS_PAIRS,
    PICKLE_SUFFIXES,
    SDXL_KEYS,
    SINGLE_KEY,
    embedding_source,
)
from anybody.identity.names import ENCODERS, validate_name

SAFETENSORS_SUFFIXES = (".safetensors",)
DIFFUSERS_PICKLE_FILE = "learned_embeds.bin"
# Bounds that no real embedding comes near: CLIP's 77-token context leaves 75 for words, text encoders
# are 768 to 1280 wide, and a 75 x 4096 fp32 tensor is 1.2 MB. Larger is a wrong file or an attack.
MAX_VECTORS = 75
MAX_WIDTH = 4096
MAX_EMBEDDING_FILE_BYTES = 32 * 2**20
# What torch's own pickles import, and what the original textual-inversion code's `.pt` adds: its
# string_to_param is an `nn.ParameterDict`, a module, whose state holds a Python set.
TRUSTED_IMPORTS = ("torch.", "collections.OrderedDict")
PARAMETER_DICT = "torch.nn.modules.container.ParameterDict"
MODULE_STATE_IMPORTS = ("__builtin__.set", "builtins.set")


def import_embedding(path: str | os.PathLike[str], name: str,
                     model_width: int | dict[str, int] | None = None) -> Identity:
    """Read a textual-inversion embedding (any format `export_identity` writes, and the usual others).

    Recognised: a diffusers one-key {token: tensor}; a folder as diffusers' training examples leave it
    (`learned_embeds.safetensors`, and for SDXL `learned_embeds_2.safetensors` beside it, read together as
    the two encoders; naming either file of that pair reads both) or as anybody's SDXL diffusers export
    (`text_encoder/` and `text_encoder_2/` subfolders); A1111 `string_to_param` (its single entry), kohya
    `emb_params`, SDXL `clip_l`/`clip_g`, any dict holding exactly one tensor, or a bare tensor; a (width,)
    vector counts as one token. `.pt`/`.bin` are read with `weights_only=True` only: a file that would need
    to create Python objects (and so could run code) is refused, never unpickled.

    `model_width`, when given, is the width of the model's first text encoder, or a dict of all its
    encoders ({"text_encoder": 768, "text_encoder_2": 1280} for SDXL); a mismatch is an IdentityError
    naming both widths, found here rather than as a shape error at generation time. With a dict, an SDXL
    embedding for a one-encoder model is refused too (its clip_l would fit SD 1.x by width alone).

    A file names no model, so the identity records no base model; it records the family its widths say
    (`anybody.identity.families`), if they say one. The caller that checked the widths against a model
    records that model.
    """
    identity_name = validate_name(name)
    source = embedding_source(path)
    if source.is_dir():
        encoders, source_format = _read_folder(source, model_width)
    elif source.is_file() and _pair_of(source) is not None:
        encoders, source_format = _read_pair(source.parent, _pair_of(source), model_width)
    else:
        encoders, source_format = _read_embedding_file(source)
    _check_widths(encoders, model_width, source)
    metadata: dict[str, object] = {"method": "imported", "source_format": source_format, "source_file": source.name}
    family = family_from_widths([int(encoders[e].shape[1]) for e in ENCODERS if e in encoders])
    if family is not None:  # a file names no model; its widths may name the family
        metadata["family"] = family
    return Identity(name=identity_name, encoder_embeddings=encoders, metadata=metadata)


def _pair_of(file: Path) -> tuple[str, str] | None:
    """The diffusers SDXL pair a file belongs to, when its partner lies beside it (or it is the second)."""
    for pair in DIFFUSERS_PAIRS:
        first, second = pair
        if file.name == second or (file.name == first and (file.parent / second).is_file()):
            return pair
    return None


def _read_folder(folder: Path, model_width: int | dict[str, int] | None) -> tuple[dict[str, torch.Tensor], str]:
    """A diffusers output folder: anybody's per-encoder subfolders, or a training example's learned_embeds."""
    if any((folder / encoder / DIFFUSERS_FILE).is_file() for encoder in ENCODERS):
        return _read_subfolders(folder), "diffusers"
    for pair in DIFFUSERS_PAIRS:
        if any((folder / file).is_file() for file in pair):
            return _read_pair(folder, pair, model_width)
    raise IdentityError(f"The folder {folder} holds no {DIFFUSERS_FILE} or {DIFFUSERS_PICKLE_FILE}",
                        "Pass the embedding file itself (.safetensors, .pt or .bin)")


def _read_subfolders(folder: Path) -> dict[str, torch.Tensor]:
    """anybody's SDXL diffusers export: text_encoder/learned_embeds.safetensors and text_encoder_2/..."""
    missing = [f"{encoder}/{DIFFUSERS_FILE}" for encoder in ENCODERS
               if not (folder / encoder / DIFFUSERS_FILE).is_file()]
    if missing:
        raise IdentityError(f"The SDXL embedding folder {folder} has no {missing[0]}, the embedding of its "
                            f"{'second' if '_2' in missing[0] else 'first'} text encoder",
                            "Copy the whole export folder, both text_encoder subfolders")
    encoders = {encoder: _one_encoder(folder / encoder / DIFFUSERS_FILE) for encoder in ENCODERS}
    _check_token_counts(encoders, folder)
    return encoders


def _read_pair(folder: Path, pair: tuple[str, str], model_width: int | dict[str, int] | None,
               ) -> tuple[dict[str, torch.Tensor], str]:
    """What diffusers' training examples write: `learned_embeds` alone (SD 1.x, 2.x), or with
    `learned_embeds_2` beside it for SDXL's second text encoder (textual_inversion_sdxl.py)."""
    first, second = (folder / file for file in pair)
    if not first.is_file():
        raise IdentityError(f"{folder} holds {second.name}, the second text encoder's embedding from diffusers' "
                            f"SDXL training, but not {first.name}, the first encoder's",
                            "Copy both files from the training's output folder")
    encoders = {"text_encoder": _one_encoder(first)}
    if second.is_file():
        encoders["text_encoder_2"] = _one_encoder(second)
        _check_token_counts(encoders, folder)
    elif isinstance(model_width, Mapping) and "text_encoder_2" in model_width:
        raise IdentityError(f"{folder} holds {first.name} but not {second.name}: an SDXL model needs both "
                            "(diffusers' SDXL training writes the second encoder's embedding beside the first)",
                            f"Copy {second.name} from the training's output folder too")
    return encoders, "diffusers"


def _one_encoder(file: Path) -> torch.Tensor:
    found, _ = _read_embedding_file(file)
    if len(found) != 1:
        raise IdentityError(f"{file} holds embeddings for {len(found)} text encoders, not one",
                            "Use the diffusers files as written, one encoder per file")
    return found["text_encoder"]


def _read_embedding_file(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The checked (n, width) float32 tensors per encoder, and the structure they were found in."""
    raw, source_format = _interpret(_load_payload(path), path)
    encoders = {encoder: _checked(value, path, label) for encoder, (label, value) in raw.items()}
    _check_token_counts(encoders, path)
    return encoders, source_format


def _load_payload(path: Path) -> object:
    """The file's contents as tensors and plain containers, never as arbitrary Python objects."""
    size = path.stat().st_size
    if size == 0:
        raise IdentityError(f"The embedding file {path} is empty", "Download or export it again")
    if size > MAX_EMBEDDING_FILE_BYTES:
        raise IdentityError(f"{path} is {size / 2**20:.0f} MiB: far too large for a textual-inversion "
                            "embedding", "Check that it is an embedding, not a model or a LoRA")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        # Broad on purpose: the bytes are untrusted, and any failure to parse them means "not readable".
        try:
            return load_safetensors_bytes(path.read_bytes())
        except Exception as error:
            raise IdentityError(f"{path} is not a readable safetensors file ({summarize(error)})",
                                "It may be truncated or damaged: download or export it again") from error
    if suffix in PICKLE_SUFFIXES:
        try:
            with warnings.catch_warnings():  # torch's advice on failure is to unpickle anyway: not ours
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # untrusted bytes: any failure to read them is the file's problem
            raise _refusal(path, error) from error
    raise IdentityError(f"{path} is neither a .safetensors nor a .pt/.bin file",
                        "Import a textual-inversion embedding file (.safetensors, .pt or .bin)")


def _refusal(path: Path, error: Exception) -> IdentityError:
    """Why a `.pt` could not be read safely: the original textual-inversion format, code, or damage."""
    imports = _pickle_imports(path)
    foreign = [name for name in imports if not name.startswith(TRUSTED_IMPORTS)]
    if PARAMETER_DICT in imports and set(foreign) <= set(MODULE_STATE_IMPORTS):
        return IdentityError(
            f"{path} is an embedding from the original textual-inversion code (rinongal/textual_inversion): "
            "its string_to_param is a PyTorch nn.ParameterDict, a Python object that cannot be read without "
            "unpickling, which could run code",
            "Load it with the tool that made it and re-save it as safetensors (its string_to_param['*'] tensor "
            "as emb_params), then import that")
    if foreign or (isinstance(error, pickle.UnpicklingError) and _needs_objects(error)):
        shown = f" (it imports {', '.join(foreign[:3])})" if foreign else ""
        return IdentityError(
            f"{path} carries Python code or objects beyond plain tensors{shown}, so it was not loaded: "
            "loading it could run that code",
            "Use a .safetensors version of the embedding, or one exported from a tool you trust")
    return IdentityError(f"{path} is not a readable PyTorch file ({summarize(error)})",
                         "It may be truncated or damaged: download or export it again")
def _needs_objects(error: pickle.UnpicklingError) -> bool:
    """torch's weights-only loader says so when a pickle asks for a class or function it will not run."""
    message = str(error)
    return any(marker in message for marker in ("GLOBAL", "allowlisted", "add_safe_globals"))


def _pickle_imports(path: Path) -> list[str]:
    """What a refused pickle would have imported, for an honest message.

    torch's safe loader stops at pickle features it does not support (protocol 4 framing, say) before it
    sees the imports, so the opcodes are listed with `pickletools`, which reads and never runs them. Best
    effort: a damaged stream yields what was read before the damage.
    """
    found: list[str] = []
    for stream in _pickle_streams(path):
        reader = io.BytesIO(stream)
        strings: list[str] = []
        for _ in range(8):  # torch's legacy files are a few pickles in a row
            if reader.tell() >= len(stream):
                break
            try:
                for opcode, argument, _offset in pickletools.genops(reader):
                    if opcode.name in ("GLOBAL", "INST") and isinstance(argument, str):
                        found.append(argument.replace(" ", "."))
                    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(argument, str):
                        strings.append(argument)
            except Exception:  # damaged, or raw tensor bytes after the pickles: keep what was found
                break
    return sorted(set(found))


def _pickle_streams(path: Path) -> list[bytes]:
    """The pickles in a `.pt`: the file itself (legacy or plain pickle) or the `.pkl` members of its zip."""
    data = path.read_bytes()
    try:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            return [data]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".pkl")][:4]
            # read() is bounded: a hostile zip may claim (or inflate to) any size
            return [archive.open(info).read(MAX_EMBEDDING_FILE_BYTES) for info in members]
    except Exception:  # a damaged zip: nothing more to learn from it
        return []


def _interpret(payload: object, path: Path) -> tuple[dict[str, tuple[str, object]], str]:
    """Find the embedding tensor(s) in a loaded file: {encoder: (what it was called, value)}, format."""
    if isinstance(payload, torch.Tensor):
        return {"text_encoder": ("the tensor", payload)}, "tensor"
    if not isinstance(payload, Mapping):
        raise IdentityError(f"{path} holds a {type(payload).__name__}, not an embedding",
                            "Import a textual-inversion embedding file")
    if "string_to_param" in payload:
        params = payload["string_to_param"]
        if not isinstance(params, Mapping) or len(params) != 1:
            count = len(params) if isinstance(params, Mapping) else "no"
            raise IdentityError(f"{path} is an A1111 embedding with {count} entries in string_to_param, "
                                "not exactly one", "Import an embedding that holds one concept")
        return {"text_encoder": ("string_to_param", next(iter(params.values())))}, "a1111"
    if "clip_g" in payload:
        if "clip_l" not in payload:
            raise IdentityError(f"{path} holds an SDXL clip_g embedding without its clip_l half",
                                "Import the complete SDXL embedding (clip_l and clip_g)")
        return {encoder: (key, payload[key]) for encoder, key in SDXL_KEYS.items()}, "sdxl"
    if SINGLE_KEY in payload:
        return {"text_encoder": (SINGLE_KEY, payload[SINGLE_KEY])}, "kohya"
    tensors = [(key, value) for key, value in payload.items() if isinstance(value, torch.Tensor)]
    if not tensors:
        raise IdentityError(f"{path} holds no tensors", "Import a textual-inversion embedding file")
    if len(tensors) > 1:
        shown = ", ".join(ascii(key)[:40] for key, _ in tensors[:5])
        raise IdentityError(
            f"{path} holds {len(tensors)} tensors ({shown}{', ...' if len(tensors) > 5 else ''}) and none of "
            "the known embedding keys, so which one is the embedding is ambiguous",
            "Import a file with one embedding (diffusers, A1111, kohya, ComfyUI or SDXL clip_l/clip_g)")
    key, value = tensors[0]
    return {"text_encoder": (ascii(key)[:40], value)}, "diffusers" if len(payload) == 1 else "single-tensor"


def _checked(value: object, path: Path, label: str) -> torch.Tensor:
    """A dense, finite float32 (n, width) CPU tensor of sane size, or an IdentityError saying why not."""
    if not isinstance(value, torch.Tensor):
        raise IdentityError(f"{path}: {label} is a {type(value).__name__}, not a tensor",
                            "Import a textual-inversion embedding file")
    if value.layout != torch.strided or not value.is_floating_point():
        raise IdentityError(f"{path}: {label} holds {value.dtype} values, not floating-point embeddings",
                            "Import a textual-inversion embedding file")
    if value.dim() == 1:
        value = value.unsqueeze(0)
    if value.dim() != 2:
        raise IdentityError(f"{path}: {label} has shape {tuple(value.shape)}, not (vectors, width)",
                            "Import a textual-inversion embedding file")
    rows, width = value.shape
    if rows == 0 or width == 0:
        raise IdentityError(f"{path}: {label} is empty (shape {tuple(value.shape)})",
                            "Download or export the embedding again")
    if rows > MAX_VECTORS or width > MAX_WIDTH:
        raise IdentityError(f"{path}: {label} has shape {tuple(value.shape)}, beyond any text encoder "
                            f"(at most {MAX_VECTORS} vectors of width {MAX_WIDTH})",
                            "Check that the file is a textual-inversion embedding")
    try:
        result = value.detach().to("cpu", torch.float32).contiguous().clone()
    except (RuntimeError, TypeError, NotImplementedError) as error:
        raise IdentityError(f"{path}: {label} cannot be read as float32 ({summarize(error)})",
                            "Download or export the embedding again") from error
    if not torch.isfinite(result).all():
        raise IdentityError(f"{path}: {label} holds NaN or infinite values",
                            "The embedding is broken: download or export it again")
    return result


def _check_token_counts(encoders: dict[str, torch.Tensor], path: Path) -> None:
    counts = {encoder: value.shape[0] for encoder, value in encoders.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{SDXL_KEYS[encoder]} {count}" for encoder, count in counts.items())
        raise IdentityError(f"{path} has different numbers of vectors per text encoder ({listed})",
                            "Import an SDXL embedding whose clip_l and clip_g have the same length")


def _check_widths(encoders: dict[str, torch.Tensor], model_width: int | dict[str, int] | None,
                  path: Path) -> None:
    if model_width is None:
        return
    all_encoders_known = not isinstance(model_width, int)  # an int gives only the first encoder's width
    expected = dict(model_width) if all_encoders_known else {"text_encoder": model_width}
    if all_encoders_known and encoders.keys() - expected.keys():
        raise IdentityError(f"{path} is an SDXL embedding (clip_l and clip_g), but this model has one text encoder",
                            "Import it for an SDXL model, or import an embedding made for this model's family")
    for encoder, width in expected.items():
        have = encoders.get(encoder)
        if have is None:
            raise IdentityError(f"{path} has no embedding for the model's {encoder} (an SDXL model needs "
                                "both clip_l and clip_g)", "Import an embedding made for SDXL")
        if have.shape[1] != width:
            raise IdentityError(
                f"{path} holds vectors of width {have.shape[1]}, but this model's {encoder} needs "
                f"width {width}",
                "Import an embedding made for this model family (768: SD 1.x, 1024: SD 2.x, "
                "768 and 1280: SDXL), or choose the model it was made for",
            )

