"""Textual-inversion files other tools read: export an identity to them, import theirs as an identity.

Why: a learned person is only useful where people already draw. An identity's token embeddings are
exactly a textual-inversion embedding, so they can travel as one; the structures are the ones each tool
reads (METHOD.md §3):

- diffusers: one-key safetensors {token: (n, width)}; `pipe.load_textual_inversion(path)` registers
  `token`, `token_1`, ... and expands `token` in prompts. SDXL needs one such file per text encoder.
- AUTOMATIC1111 `.pt`: {"string_to_token": {"*": 265}, "string_to_param": {"*": (n, width)}, "name",
  "step", "sd_checkpoint", "sd_checkpoint_name"}; diffusers reads it too.
- One tensor in a safetensors file: A1111 reads any one-key dict, ComfyUI the first tensor, kohya writes
  {"emb_params": ...}. anybody writes that kohya key for all three: the one single-tensor form every tool
  reads, and it names no encoder (a "clip_l" key would be wrong for SD 2.x's 1024-wide encoder).
- SDXL, all of A1111, ComfyUI and kohya: {"clip_l": (n, 768), "clip_g": (n, 1280)} in safetensors.

In A1111 and ComfyUI the prompt word is the file name (`alice.pt` -> "alice", or "embedding:alice" in
ComfyUI); only diffusers reads the token from the file.

Importing never runs code from a file: `.safetensors` cannot carry any, and `.pt`/`.bin` are read only
with `torch.load(..., weights_only=True)`, which refuses anything but tensors and plain containers.
Every problem with a file is an `IdentityError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes

from anybody.errors import IdentityError, UsageError
from anybody.identity.file import Identity
from anybody.identity.names import validate_name
from anybody.storage import write_safetensors, write_with

ENCODERS = ("text_encoder", "text_encoder_2")
# The SDXL keys A1111, ComfyUI and kohya share: CLIP ViT-L (first encoder) and OpenCLIP bigG (second).
SDXL_KEYS = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
SINGLE_KEY = "emb_params"
DIFFUSERS_FILE = "learned_embeds.safetensors"
DIFFUSERS_PICKLE_FILE = "learned_embeds.bin"
# A1111's placeholder: the CLIP token id of "*</w>", the same in the SD 1.x and 2.x vocabularies.
A1111_PLACEHOLDER_ID = 265
SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".bin")
# Bounds that no real embedding comes near: CLIP's 77-token context leaves 75 for words, text encoders
# are 768 to 1280 wide, and a 75 x 4096 fp32 tensor is 1.2 MB. Larger is a wrong file or an attack.
MAX_VECTORS = 75
MAX_WIDTH = 4096
MAX_EMBEDDING_FILE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ExportFormat:
    """One export target, described for the CLI's help and default file names."""

    name: str
    suffix: str
    sdxl_suffix: str  # "" means a folder (diffusers needs one file per text encoder)
    structure: str
    prompt: str


FORMATS: dict[str, ExportFormat] = {
    "diffusers": ExportFormat(
        "diffusers", ".safetensors", "",
        f"{{token: (n, width)}}; SDXL: a folder with text_encoder/{DIFFUSERS_FILE} and "
        f"text_encoder_2/{DIFFUSERS_FILE}",
        "the token in the file (default <name>): pipe.load_textual_inversion(path); for SDXL once per "
        "encoder with subfolder='text_encoder' / 'text_encoder_2' and the matching tokenizer"),
    "a1111": ExportFormat(
        "a1111", ".pt", ".safetensors",
        "torch.save {string_to_token, string_to_param: {'*': (n, width)}, name, step, sd_checkpoint, "
        "sd_checkpoint_name}; SDXL: safetensors {clip_l, clip_g}",
        "the file name (alice.pt -> alice); put it in stable-diffusion-webui/embeddings"),
    "a1111-safetensors": ExportFormat(
        "a1111-safetensors", ".safetensors", ".safetensors",
        f"safetensors {{{SINGLE_KEY!r}: (n, width)}}; SDXL: {{clip_l, clip_g}}",
        "the file name (alice.safetensors -> alice); put it in stable-diffusion-webui/embeddings"),
    "kohya": ExportFormat(
        "kohya", ".safetensors", ".safetensors",
        f"safetensors {{{SINGLE_KEY!r}: (n, width)}}; SDXL: {{clip_l, clip_g}}",
        "the file name, as in A1111 and ComfyUI"),
    "comfyui": ExportFormat(
        "comfyui", ".safetensors", ".safetensors",
        f"safetensors {{{SINGLE_KEY!r}: (n, width)}}; SDXL: {{clip_l, clip_g}}",
        "embedding:NAME where NAME is the file name; put it in ComfyUI/models/embeddings"),
}


def export_file_name(identity: Identity, format: str) -> str:
    """The default file (or folder) name for an export: the identity's name, so the prompt word is too."""
    spec = _format(format)
    suffix = spec.sdxl_suffix if _is_sdxl(identity) else spec.suffix
    return f"{identity.name}{suffix}" if suffix else f"{identity.name}-{spec.name}"


def export_identity(identity: Identity, format: str, out_path: str | os.PathLike[str],
                    token: str | None = None) -> Path:
    """Write the identity's token embeddings as a textual-inversion file another tool loads; the path.

    Formats (see `FORMATS`): "diffusers", "a1111" (`.pt`), "a1111-safetensors", "kohya", "comfyui".
    Every tensor is float32, contiguous and on the CPU, and written atomically.

    The prompt word in A1111 and ComfyUI is the file name (`alice.pt` -> "alice"; "embedding:alice" in
    ComfyUI), so name the file after the word you want to type. Only diffusers reads the token from the
    file: `token` (default "<name>") is the diffusers key, or the A1111 "name" field. A1111 itself takes
    the word from the file name and ignores that field, but diffusers registers it when loading an A1111
    file without `token=`; the bare name would often be refused there, since CLIP's vocabulary already
    holds common first names ("alice"), so it is "<name>" too. Other formats have no token, and passing
    one is a UsageError rather than silently ignored.

    SDXL identities (two text encoders): "a1111", "a1111-safetensors", "kohya" and "comfyui" write one
    safetensors {"clip_l": (n, 768), "clip_g": (n, 1280)}, the form all of those tools read (so "a1111"
    needs a `.safetensors` path there); "diffusers" writes a folder with
    `text_encoder/learned_embeds.safetensors` and `text_encoder_2/learned_embeds.safetensors`, each
    {token: (n, width)}, because diffusers loads SDXL embeddings once per encoder:
    `pipe.load_textual_inversion(folder, subfolder="text_encoder_2", token=..., text_encoder=
    pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)` and the same with "text_encoder".
    """
    spec = _format(format)
    if identity.stages:
        raise IdentityError(
            f"{identity.name!r} has per-stage key and value tokens (SeFi-IDE, {identity.stages} stages); a "
            "textual-inversion file holds one embedding for every step and cannot carry them",
            "Draw it with anybody generate, or in your own diffusers pipeline after anybody.apply(pipe, identity)",
        )
    target = Path(out_path).expanduser()
    tensors = _export_tensors(identity)
    sdxl = "text_encoder_2" in tensors
    if token is not None and spec.name not in ("diffusers", "a1111"):
        raise UsageError(f"The {spec.name} format has no token: the prompt word is the file name",
                         f"Leave out the token and name the file after the word, such as {identity.name}"
                         f"{spec.sdxl_suffix if sdxl else spec.suffix}")
    metadata = _export_metadata(identity)

    if spec.name == "diffusers":
        key = _checked_token(token if token is not None else f"<{identity.name}>")
        if not sdxl:
            _require_suffix(target, spec.suffix, spec.name)
            write_safetensors(target, {key: tensors["text_encoder"]}, metadata)
            return target
        if target.suffix.lower() in (*SAFETENSORS_SUFFIXES, *PICKLE_SUFFIXES) or target.is_file():
            raise UsageError(
                f"An SDXL identity exports to diffusers as a folder (one file per text encoder), "
                f"not the file {target}",
                f"Give a folder path such as {identity.name}-diffusers")
        for encoder, value in tensors.items():
            write_safetensors(target / encoder / DIFFUSERS_FILE, {key: value}, metadata)
        return target

    if sdxl:
        _require_suffix(target, spec.sdxl_suffix, f"{spec.name} (SDXL)")
        write_safetensors(target, {SDXL_KEYS[encoder]: value for encoder, value in tensors.items()}, metadata)
        return target
    _require_suffix(target, spec.suffix, spec.name)
    embedding = tensors["text_encoder"]
    if spec.name == "a1111":
        checkpoint = identity.base_model if identity.base_model != "unknown" else None
        data = {
            "string_to_token": {"*": A1111_PLACEHOLDER_ID},
            "string_to_param": {"*": embedding},
            "name": _checked_token(token if token is not None else f"<{identity.name}>"),
            "step": _training_steps(identity),
            "sd_checkpoint": None,
            "sd_checkpoint_name": checkpoint,
        }
        write_with(target, lambda stream: torch.save(data, stream))
    else:
        write_safetensors(target, {SINGLE_KEY: embedding}, metadata)
    return target


def import_embedding(path: str | os.PathLike[str], name: str,
                     model_width: int | dict[str, int] | None = None) -> Identity:
    """Read a textual-inversion embedding (any format `export_identity` writes, and the usual others).

    Recognised: a diffusers one-key {token: tensor} (file, or a folder with `learned_embeds.safetensors`
    or the SDXL per-encoder subfolders), A1111 `string_to_param` (its single entry), kohya `emb_params`,
    SDXL `clip_l`/`clip_g`, any dict holding exactly one tensor, or a bare tensor; a (width,) vector counts
    as one token. `.pt`/`.bin` are read with `weights_only=True` only: a file that would need to create
    Python objects (and so could run code) is refused, never unpickled.

    `model_width`, when given, is the width of the model's first text encoder, or a dict of all its
    encoders ({"text_encoder": 768, "text_encoder_2": 1280} for SDXL); a mismatch is an IdentityError
    naming both widths, found here rather than as a shape error at generation time. With a dict, an SDXL
    embedding for a one-encoder model is refused too (its clip_l would fit SD 1.x by width alone).
    """
    identity_name = validate_name(name)
    source = Path(path).expanduser()
    if source.is_dir():
        encoders, source_format = _read_folder(source)
    elif source.is_file():
        encoders, source_format = _read_embedding_file(source)
    else:
        raise IdentityError(f"The embedding file {source} does not exist", "Check the path")
    _check_widths(encoders, model_width, source)
    two = "text_encoder_2" in encoders
    metadata: dict[str, object] = {
        "method": "imported",
        "source_format": source_format,
        "source_file": source.name,
        "family": "sdxl" if two else "unknown",
    }
    return Identity(name=identity_name, encoder_embeddings=encoders, metadata=metadata)


# --- export helpers ---------------------------------------------------------------------------------


def _format(format: str) -> ExportFormat:
    spec = FORMATS.get(format)
    if spec is None:
        raise UsageError(f"Unknown export format {format!r}", f"Use one of: {', '.join(FORMATS)}")
    return spec


def _is_sdxl(identity: Identity) -> bool:
    return "text_encoder_2" in identity.encoder_embeddings


def _export_tensors(identity: Identity) -> dict[str, torch.Tensor]:
    """Fresh float32 CPU copies: a view would make torch.save write its whole storage (a table, say)."""
    tensors: dict[str, torch.Tensor] = {}
    for encoder in ENCODERS:
        value = identity.encoder_embeddings.get(encoder)
        if value is None:
            continue
        if value.dim() != 2 or value.shape[0] == 0 or value.shape[1] == 0 or not value.is_floating_point():
            raise IdentityError(f"The identity {identity.name!r} has {encoder} embeddings of shape "
                                f"{tuple(value.shape)} and type {value.dtype}", "Learn the identity again")
        copy = value.detach().to("cpu", torch.float32).contiguous().clone()
        if not torch.isfinite(copy).all():
            raise IdentityError(f"The identity {identity.name!r} holds non-finite values ({encoder})",
                                "Learn the identity again")
        tensors[encoder] = copy
    if "text_encoder" not in tensors:
        raise IdentityError(f"The identity {identity.name!r} has no text_encoder embeddings",
                            "Learn the identity again")
    if len({value.shape[0] for value in tensors.values()}) != 1:
        raise IdentityError(f"The identity {identity.name!r} has encoders with different token counts",
                            "Learn the identity again")
    return tensors


def _export_metadata(identity: Identity) -> dict[str, str]:
    """Provenance for people who open the file; no tool reads it, and it is never "anybody-identity"."""
    metadata = {"format": "pt", "name": identity.name, "exported_by": "anybody", "method": identity.method,
                "base_model": identity.base_model}
    family = identity.metadata.get("family")
    if isinstance(family, str):
        metadata["family"] = family
    return metadata


def _training_steps(identity: Identity) -> int | None:
    training = identity.metadata.get("training")
    steps = training.get("steps") if isinstance(training, dict) else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _checked_token(token: str) -> str:
    """A token the tokenizer keeps as one piece: no spaces, not empty, not absurdly long."""
    if not isinstance(token, str) or not token or len(token) > 100 or any(c.isspace() for c in token):
        raise UsageError(f"The token {token!r} cannot be used in a prompt",
                         "Use one word without spaces, such as <alice>")
    return token


def _require_suffix(target: Path, suffix: str, what: str) -> None:
    """The tools choose their reader by suffix: a safetensors file named `.pt` would not load there."""
    allowed = PICKLE_SUFFIXES if suffix == ".pt" else (suffix,)
    if target.suffix.lower() not in allowed:
        raise UsageError(f"The {what} embedding is written as a {' or '.join(allowed)} file, not {target.name}",
                         f"Name the output like {target.stem or 'alice'}{suffix}")


# --- import helpers ---------------------------------------------------------------------------------


def _read_folder(folder: Path) -> tuple[dict[str, torch.Tensor], str]:
    """A diffusers export folder: per-encoder subfolders (SDXL) or one `learned_embeds` file."""
    if (folder / ENCODERS[0] / DIFFUSERS_FILE).is_file():
        encoders: dict[str, torch.Tensor] = {}
        for encoder in ENCODERS:
            file = folder / encoder / DIFFUSERS_FILE
            if not file.is_file():
                continue
            found, _ = _read_embedding_file(file)
            if len(found) != 1:
                raise IdentityError(f"{file} holds embeddings for {len(found)} text encoders, not one",
                                    "Use the diffusers export folder as written, one encoder per file")
            encoders[encoder] = found["text_encoder"]
        _check_token_counts(encoders, folder)
        return encoders, "diffusers"
    for candidate in (DIFFUSERS_FILE, DIFFUSERS_PICKLE_FILE):
        if (folder / candidate).is_file():
            return _read_embedding_file(folder / candidate)
    raise IdentityError(f"The folder {folder} holds no {DIFFUSERS_FILE} or {DIFFUSERS_PICKLE_FILE}",
                        "Pass the embedding file itself (.safetensors, .pt or .bin)")


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
            raise IdentityError(f"{path} is not a readable safetensors file ({_short(error)})",
                                "It may be truncated or damaged: download or export it again") from error
    if suffix in PICKLE_SUFFIXES:
        try:
            with warnings.catch_warnings():  # torch's advice on failure is to unpickle anyway: not ours
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # untrusted bytes: any failure to read them is the file's problem
            imports = _foreign_imports(path)
            if imports or (isinstance(error, pickle.UnpicklingError) and _needs_objects(error)):
                shown = f" (it imports {', '.join(imports[:3])})" if imports else ""
                raise IdentityError(
                    f"{path} carries Python code or objects beyond plain tensors{shown}, so it was not loaded: "
                    "loading it could run that code",
                    "Use a .safetensors version of the embedding, or one exported from a tool you trust",
                ) from error
            raise IdentityError(f"{path} is not a readable PyTorch file ({_short(error)})",
                                "It may be truncated or damaged: download or export it again") from error
    raise IdentityError(f"{path} is neither a .safetensors nor a .pt/.bin file",
                        "Import a textual-inversion embedding file (.safetensors, .pt or .bin)")


def _needs_objects(error: pickle.UnpicklingError) -> bool:
    """torch's weights-only loader says so when a pickle asks for a class or function it will not run."""
    message = str(error)
    return any(marker in message for marker in ("GLOBAL", "allowlisted", "add_safe_globals"))


def _foreign_imports(path: Path) -> list[str]:
    """What a refused pickle would have imported beyond torch's own rebuilders, for an honest message.

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
    trusted = ("torch.", "collections.OrderedDict")
    return sorted({name for name in found if not name.startswith(trusted)})


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
        raise IdentityError(f"{path}: {label} cannot be read as float32 ({_short(error)})",
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


def _short(error: BaseException) -> str:
    """The reason in an error as one bounded printable line: parsers of hostile bytes say a lot."""
    text = str(error)
    if "WeightsUnpickler error:" in text:  # torch wraps the reason in advice to unpickle anyway: drop that
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split(". ")[0] if lines else ""
    if len(first) < 24:  # "101" or "" alone says nothing; the error's kind says a little
        first = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return "".join(c if c.isprintable() else "?" for c in first)[:160]
