"""The textual-inversion formats anybody exports, as plain data: what each tool reads, where the file goes by
default, and which word to type in the prompt. No model library is imported here, so the command line can
build its `--format` choices at start-up. The writers (`writers.py`) and the readers (`readers.py`) take
their file structures from here; this module names neither.

An identity's token embeddings are exactly a textual-inversion embedding, so they travel as one. The
structures are the ones each tool reads (docs/method.md §5):

- diffusers: one-key safetensors {token: (n, width)}; `pipe.load_textual_inversion(path)` registers
  `token`, `token_1`, ... and expands `token` in prompts. SDXL needs one such file per text encoder.
- AUTOMATIC1111 `.pt`: {"string_to_token": {"*": 265}, "string_to_param": {"*": (n, width)}, "name", "step",
  "sd_checkpoint", "sd_checkpoint_name"}; diffusers reads it too.
- One tensor in a safetensors file: A1111 reads any one-key dict, ComfyUI the first tensor, kohya writes
  {"emb_params": ...}. anybody writes that kohya key for all of them: the one single-tensor form every tool
  reads, and it names no encoder (a "clip_l" key would be wrong for SD 2.x's 1024-wide encoder).
- SDXL, for A1111, ComfyUI, InvokeAI and kohya: {"clip_l": (n, 768), "clip_g": (n, 1280)} in safetensors.

Where the prompt word comes from differs, and decides the default file names:

- A1111 and kohya take the file name: `alice.pt` -> "alice"; ComfyUI the same as "embedding:alice";
  InvokeAI installs the file under its name and reads "<alice>". diffusers reads the token in the file.
- kohya's generation and training scripts add the file name (and `name1`, `name2`, ... for more vectors) to
  CLIP's tokenizer and stop when it adds fewer tokens than vectors, that is when a name is already a word of
  CLIP's vocabulary; common first names are ("alice", "bob", "anna"). Its default name is "<name>-anybody".
- A1111 and ComfyUI accept vocabulary words, so their file is named after the identity itself. To keep
  exports of different formats from replacing each other, each format has its own folder:
  `anybody-output/exports/a1111/alice.pt`, `.../comfyui/alice.safetensors`, `.../kohya/alice-anybody.safetensors`.
- InvokeAI probes a file's width from its last dimension for the A1111, kohya and SDXL keys, but from the
  first for any other one-key file (`_get_base_or_raise` in invoke-ai/InvokeAI
  invokeai/backend/model_manager/configs/textual_inversion.py), so it reads the diffusers file
  {token: (2, 768)} as width 2 and refuses it. `invokeai` writes the single-tensor file it reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anybody.errors import IdentityError, UsageError
from anybody.identity.names import ENCODERS, token_strings

if TYPE_CHECKING:
    from anybody.identity.file import Identity

# The SDXL keys A1111, ComfyUI, InvokeAI and kohya share: CLIP ViT-L (first encoder), OpenCLIP bigG (second).
SDXL_KEYS = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
SINGLE_KEY = "emb_params"
DIFFUSERS_FILE = "learned_embeds.safetensors"
# What diffusers' SDXL training example (examples/textual_inversion/textual_inversion_sdxl.py) writes side
# by side: one {token: (n, width)} file per text encoder, and its `.bin` twins without safe serialization.
DIFFUSERS_PAIRS = (("learned_embeds.safetensors", "learned_embeds_2.safetensors"),
                   ("learned_embeds.bin", "learned_embeds_2.bin"))
PICKLE_SUFFIXES = (".pt", ".bin")


@dataclass(frozen=True)
class ExportFormat:
    """One `--format`: the tools it is for, the writer that makes it, its default name and its prompt word.

    `stem` and `prompt` are templates: {name} is the identity's name, {stem} the written file's name without
    its suffix, {token} the token stored in the file. An empty `sdxl_suffix` means a folder.
    """

    name: str
    tools: str
    writer: str  # a key of `anybody.identity.writers.WRITERS`
    suffix: str
    sdxl_suffix: str
    stem: str
    prompt: str
    use: str  # what to do with the file ({file}: its name, {path}: where it is, {stem}, {vectors})
    sdxl_use: str = ""  # the same for an SDXL export, where it differs
    token_in_file: bool = False  # the tool reads the prompt word from the file (`--token` sets it)
    stem_is_new_token: bool = False  # the tool adds the file name to CLIP's tokenizer (kohya's rule)


FORMATS: dict[str, ExportFormat] = {
    "a1111": ExportFormat(
        "a1111", "AUTOMATIC1111 (stable-diffusion-webui)", "a1111", ".pt", ".safetensors", "{name}", "{stem}",
        "put {file} in stable-diffusion-webui/embeddings", token_in_file=True),
    "a1111-safetensors": ExportFormat(
        "a1111-safetensors", "AUTOMATIC1111, as safetensors", "single-tensor", ".safetensors", ".safetensors",
        "{name}", "{stem}", "put {file} in stable-diffusion-webui/embeddings"),
    "comfyui": ExportFormat(
        "comfyui", "ComfyUI", "single-tensor", ".safetensors", ".safetensors", "{name}", "embedding:{stem}",
        "put {file} in ComfyUI/models/embeddings"),
    "invokeai": ExportFormat(
        "invokeai", "InvokeAI (the a1111-safetensors file; its probe misreads the diffusers one)", "single-tensor",
        ".safetensors", ".safetensors", "{name}", "<{stem}>", "install {path} in InvokeAI's model manager"),
    "kohya": ExportFormat(
        "kohya", "kohya-ss sd-scripts, generation and training", "single-tensor", ".safetensors", ".safetensors",
        "{name}-anybody", "{stem}",
        "gen_img.py --textual_inversion_embeddings {path}; to train on: train_textual_inversion.py --weights "
        "{path} --token_string {stem} --num_vectors_per_token {vectors}", stem_is_new_token=True),
    "diffusers": ExportFormat(
        "diffusers", "diffusers (pipe.load_textual_inversion)", "diffusers", ".safetensors", "", "{name}", "{token}",
        "pipe.load_textual_inversion({path!r})", token_in_file=True,
        # diffusers loads SDXL embeddings once per encoder, from the export folder's per-encoder subfolders
        sdxl_use="pipe.load_textual_inversion({path!r}, subfolder='text_encoder'), then the same with "
                 "subfolder='text_encoder_2', text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2"),
}


def get_format(format: str) -> ExportFormat:
    """The format called `format`, or a UsageError listing the known ones."""
    spec = FORMATS.get(format)
    if spec is None:
        raise UsageError(f"Unknown export format {format!r}", f"Use one of: {', '.join(FORMATS)}")
    return spec


def default_token(name: str) -> str:
    """The token diffusers registers for an identity: "<alice>", the name anybody itself installs."""
    return token_strings(name, 1)[0]


def is_sdxl(identity: Identity) -> bool:
    return "text_encoder_2" in identity.encoder_embeddings


def export_file_name(identity: Identity, format: str) -> str:
    """The default file (or SDXL diffusers folder) name: the identity's name, or what the tool needs instead."""
    return _file_name(identity.name, is_sdxl(identity), format)


def export_path(identity: Identity, format: str, folder: str | os.PathLike[str]) -> Path:
    """Where an export goes by default: one subfolder per format, so no two formats replace each other."""
    return export_target(identity.name, is_sdxl(identity), format, folder)


def export_target(name: str, sdxl: bool, format: str, folder: str | os.PathLike[str]) -> Path:
    """`export_path` from the identity's name and whether it is SDXL's (what its file's header says)."""
    return Path(folder) / get_format(format).name / _file_name(name, sdxl, format)


def _file_name(name: str, sdxl: bool, format: str) -> str:
    spec = get_format(format)
    return spec.stem.format(name=name) + (spec.sdxl_suffix if sdxl else spec.suffix)


def check_export(name: str, format: str, target: Path, *, sdxl: bool, stages: int, token: str | None,
                 replace: bool) -> tuple[str, list[Path]]:
    """(the token to store, the files to write): every check of an export that needs no tensor, so that the
    command line refuses before torch is imported. The identity's name, whether it is SDXL's and its stage
    count are what its file's header says; kohya's file-name rule is `writers.check_kohya_stem`'s."""
    spec = get_format(format)
    if stages:
        raise IdentityError(
            f"{name!r} has per-stage key and value tokens (SeFi-IDE, {stages} stages); a textual-inversion file "
            "holds one embedding for every step and cannot carry them",
            "Draw it with anybody generate, or in your own diffusers pipeline after anybody.apply(pipe, identity)",
        )
    suffix = spec.sdxl_suffix if sdxl else spec.suffix
    if token is not None and not spec.token_in_file:
        raise UsageError(f"The {spec.name} format has no token: the prompt word is the file name",
                         f"Leave out the token and name the file after the word, such as "
                         f"{spec.stem.format(name=name)}{suffix}")
    checked_token = _checked_token(token if token is not None else default_token(name))
    outputs = _outputs(target, suffix, sdxl, spec, name)
    existing = [path for path in outputs if path.exists()]
    if existing and not replace:
        raise UsageError(f"{existing[0]} already exists", "Add --replace to overwrite it, or choose another --out path")
    return checked_token, outputs


def _outputs(target: Path, suffix: str, sdxl: bool, spec: ExportFormat, name: str) -> list[Path]:
    """The files the export will write, after checking that `target` names what the tool reads."""
    if not suffix:  # an SDXL diffusers export: a folder with one file per encoder
        if target.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES) or target.is_file():
            raise UsageError(f"An SDXL identity exports to {spec.name} as a folder (one file per text encoder), "
                             f"not the file {target}", f"Give a folder path such as {name}")
        return [target / encoder / DIFFUSERS_FILE for encoder in ENCODERS]
    # The tools choose their reader by suffix: a safetensors file named `.pt` would not load there.
    allowed = PICKLE_SUFFIXES if suffix == ".pt" else (suffix,)
    if target.suffix.lower() not in allowed:
        what = f"{spec.name} (SDXL)" if sdxl else spec.name
        raise UsageError(f"The {what} embedding is written as a {' or '.join(allowed)} file, not {target.name}",
                         f"Name the output like {target.stem or name}{suffix}")
    if target.is_dir():
        raise UsageError(f"{target} is a folder, not a file", f"Give a file path such as {target / name}{suffix}")
    return [target]


def _checked_token(token: str) -> str:
    """A token the tokenizer keeps as one piece: no spaces, not empty, not absurdly long."""
    if not isinstance(token, str) or not token or len(token) > 100 or any(c.isspace() for c in token):
        raise UsageError(f"The token {token!r} cannot be used in a prompt",
                         "Use one word without spaces, such as <alice>")
    return token


def embedding_source(path: str | os.PathLike[str]) -> Path:
    """The embedding file or folder to import (`readers.import_embedding`), refused at once when it is not
    there."""
    source = Path(path).expanduser()
    if not (source.is_file() or source.is_dir()):
        raise IdentityError(f"The embedding file {source} does not exist", "Check the path")
    return source


def prompt_hint(format: str, written: str | os.PathLike[str], *, token: str, vectors: int) -> str:
    """Two lines: what to do with the file really written, and the word to type ("alice.pt -> alice")."""
    spec = get_format(format)
    path = Path(written)
    stem = path.name if path.suffix == "" else path.stem
    word = spec.prompt.format(stem=stem, token=token)
    template = spec.sdxl_use if spec.sdxl_use and path.is_dir() else spec.use
    use = template.format(file=path.name, path=str(path), stem=stem, vectors=vectors)
    shown = f"{path.name}/" if path.is_dir() else path.name
    origin = f"the token stored in {shown}" if "{token}" in spec.prompt else f"{shown} -> {word}"
    return f"{spec.tools}: {use}\nprompt word: {word} ({origin})"

