"""What a diffusers pipeline folder holds, read from file names and JSON alone (no model library, no network):
the files a pipeline needs, whether a folder has them all, the pipeline's family and its kind.

A diffusers pipeline is a folder with `model_index.json`, which names each component and its class, and a
sub-folder per component. A component with weights (UNet, VAE, text encoders) needs its `config.json` and one
complete set of weights; the others (tokenizers, scheduler, image processor) their whole folder. Repositories
on the Hub hold much more: the same weights as `.bin` and `.safetensors`, `fp16` and `non_ema` variants, Flax,
ONNX and OpenVINO exports, whole-model `.ckpt`/`.safetensors` files and pictures at the root. `pipeline_files`
picks what `DiffusionPipeline.from_pretrained` reads and nothing more: a download of SD 1.5 is its 2 GB of
fp16 weights rather than the repository's 40 GB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Family = Literal["sd1", "sd2", "sdxl"]
INDEX = "model_index.json"
NOT_LOADED = ("safety_checker",)
"""Components anybody never loads (it draws what the prompt asks), so never needs on disk."""
TEXT_TO_IMAGE = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")
INPAINTING = ("StableDiffusionInpaintPipeline", "StableDiffusionXLInpaintPipeline")
WITHOUT_WEIGHTS = ("Tokenizer", "TokenizerFast", "Scheduler", "Processor", "FeatureExtractor")
"""How the classes of components that hold no weights end (CLIPTokenizer, DDIMScheduler, CLIPImageProcessor)."""
FORMATS = ("safetensors", "bin")
"""The weight formats from_pretrained reads, safest first (a .bin is a pickle; .ckpt, Flax, ONNX are not read)."""

_VARIANT = r"(?:\.(?P<{0}>[A-Za-z0-9_]+))?"
_WEIGHTS = re.compile(
    r"^(?:diffusion_pytorch_model|pytorch_model|model)" + _VARIANT.format("variant")
    + r"(?:-\d{5}-of-(?P<shards>\d{5}))?" + _VARIANT.format("old_variant")  # model-00001-of-00002.fp16.bin
    + r"\.(?P<format>safetensors|bin)$")
_SHARD_INDEX = re.compile(
    r"^(?:diffusion_pytorch_model|pytorch_model|model)\.(?P<format>safetensors|bin)\.index"
    + _VARIANT.format("variant") + r"\.json$")


@dataclass(frozen=True)
class Selection:
    """The files of a pipeline that from_pretrained reads, and what the file list lacks for a whole pipeline."""

    files: list[str]
    missing: list[str]
    variant: str | None = None
    """"fp16" where some component's chosen weights are the fp16 variant: loading must ask for it (diffusers
    then reads the fp16 files where there are some, the full-precision ones elsewhere)."""


def components(model_index: dict) -> dict[str, str]:
    """component folder -> class name, for the components anybody loads (those named with a class)."""
    return {name: value[1] for name, value in model_index.items()
            if not name.startswith("_") and name not in NOT_LOADED and isinstance(value, list) and len(value) == 2
            and isinstance(value[1], str) and value[0] is not None}


def pipeline_files(filenames: Iterable[str], model_index: dict, *, half: bool) -> Selection:
    """The files (paths relative to the repository, "/"-separated) that a pipeline with this `model_index.json`
    needs: the index, each weightless component's whole folder, and each other component's `config.json` with
    one set of weights, whole (every shard and its index). The set: safetensors over .bin; the fp16 variant
    when `half` and the repository has one, else the full-precision weights (the fp16 ones where only they
    exist); never non_ema/ema weights. Nothing at the root but the index (no single-file checkpoints, no
    pictures), nothing of components anybody does not load (the safety checker)."""
    by_folder: dict[str, list[str]] = {}
    for filename in filenames:
        folder, _, rest = filename.partition("/")
        if rest:
            by_folder.setdefault(folder, []).append(rest)
    files, missing, variants = [INDEX], [], set()
    for name, class_name in components(model_index).items():
        inside = sorted(by_folder.get(name, []))
        if class_name.endswith(WITHOUT_WEIGHTS):
            files += [f"{name}/{rest}" for rest in inside]
            if not inside:
                missing.append(name)
            continue
        if "config.json" in inside:
            files.append(f"{name}/config.json")
        else:
            missing.append(f"{name}/config.json")
        chosen = _weights(inside, half)
        if chosen is None:
            missing.append(f"{name} weights")
        else:
            variant, weights = chosen
            files += [f"{name}/{rest}" for rest in weights]
            variants.add(variant)
    return Selection(files, missing, "fp16" if "fp16" in variants else None)


def _weight_sets(inside: Iterable[str]) -> dict[tuple[str | None, str], list[str]]:
    """(variant, format) -> the complete set of weight files of one component folder (direct children only);
    a sharded set counts only with its index and every shard."""
    sets: dict[tuple[str | None, str], list[str]] = {}
    shards: dict[tuple[str | None, str], int] = {}
    for rest in inside:
        if "/" in rest:
            continue
        weights, index = _WEIGHTS.match(rest), _SHARD_INDEX.match(rest)
        found = weights or index
        if found is None:
            continue
        variant = found.group("variant") or (weights.group("old_variant") if weights else None)
        key = (variant, found.group("format"))
        sets.setdefault(key, []).append(rest)
        if weights and weights.group("shards"):
            shards[key] = int(weights.group("shards"))
    whole = {}
    for key, names in sets.items():
        has_index = any(_SHARD_INDEX.match(name) for name in names)
        if key in shards:
            if has_index and len(names) == shards[key] + 1:
                whole[key] = sorted(names)
        elif not has_index:
            whole[key] = names
    return whole


def _weights(inside: list[str], half: bool) -> tuple[str | None, list[str]] | None:
    sets = _weight_sets(inside)
    for form in FORMATS:
        for variant in (("fp16", None) if half else (None, "fp16")):
            if (variant, form) in sets:
                return variant, sets[(variant, form)]
    return None


def folder_files(folder: Path) -> list[str]:
    """Every file under `folder` (following links, as the Hugging Face cache's snapshots are), relative."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def read_json(path: Path) -> dict | None:
    """A JSON object from a file, or None where there is none (no file, not JSON, not an object)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def read_index(folder: Path) -> dict | None:
    """The folder's model_index.json, or None where it has none (or an unreadable one)."""
    return read_json(folder / INDEX)


def folder_selection(folder: Path, model_index: dict, *, half: bool = False) -> Selection:
    """`pipeline_files` of a folder on disk: what it lacks, and the variant loading it must ask for."""
    return pipeline_files(folder_files(folder), model_index, half=half)


def pipeline_kind(model_index: dict) -> Literal["text-to-image", "inpainting"] | None:
    """What anybody can do with the pipeline: draw from text, inpaint, or nothing (another kind of pipeline)."""
    name = model_index.get("_class_name")
    return "text-to-image" if name in TEXT_TO_IMAGE else "inpainting" if name in INPAINTING else None


def family_of_encoders(activation: str, width: int, *, second_encoder: bool) -> Family:
    """SD 1.x, SD 2.x or SDXL from the text encoders: SDXL has two; SD 2.x's OpenCLIP ViT-H is GELU and 1024
    wide, SD 1.x's CLIP ViT-L quick-GELU and 768 wide."""
    if second_encoder:
        return "sdxl"
    return "sd2" if activation == "gelu" or width >= 1024 else "sd1"


def folder_family(folder: Path, model_index: dict) -> Family | None:
    """The family of a pipeline folder, from its first text encoder's config.json (None where that is missing)."""
    config = read_json(folder / "text_encoder" / "config.json") or {}
    try:
        activation, width = str(config["hidden_act"]), int(config["hidden_size"])
    except (KeyError, TypeError, ValueError):
        return None
    return family_of_encoders(activation, width, second_encoder="text_encoder_2" in components(model_index))


def class_name(folder: Path) -> str:
    """What a folder holds as its library names it: the pipeline's class, a single model's class (a ControlNet,
    a VAE), or a transformers model's architecture; "unknown" where nothing says."""
    config = read_index(folder) or read_json(folder / "config.json") or {}
    architectures = config.get("architectures")
    if "_class_name" in config:
        return str(config["_class_name"])
    return str(architectures[0]) if isinstance(architectures, list) and architectures else "unknown"
