"""`load_pipeline(model)`: a Hub id, a local diffusers folder, a single checkpoint file, or a tiny model.

The returned object is the plain diffusers pipeline, placed on a sensible device and dtype (CUDA with
bf16 or fp16 when present, Apple MPS with fp16, else CPU with fp32), with its models frozen. Every way a
model can fail to load becomes one `ModelError` that says how to fix it.

Where the model comes from is decided first, without any model library (`anybody.models.catalog.locate_model`):
a model that cannot be had is refused there, and a Hub id whose pipeline is whole in the Hugging Face cache
is loaded from its cached folder without asking the Hub. A folder whose weights are (some of them) only the
fp16 variant, as `anybody models download` leaves it for a GPU, is loaded with `variant="fp16"`.

Every path loads with `low_cpu_mem_usage=True` (through accelerate, a dependency): the weights go straight
into empty modules instead of into randomly initialised ones first, which needs less peak memory and
skips the random initialisation. HF_HUB_DISABLE_PROGRESS_BARS=1 (the CLI sets it) also hides diffusers'
own "Loading pipeline components" bar, which ignores that variable by itself.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.utils import logging as diffusers_logging
from huggingface_hub.utils import are_progress_bars_disabled

from anybody.errors import ModelError, UsageError, summarize
from anybody.models.catalog import locate_model
from anybody.models.pipelines import Family, family_of_encoders, folder_selection, read_index
from anybody.models.tiny import tiny_model_folder

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        chosen = torch.device(device)
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"Device {device} was asked for, but this machine has no usable CUDA GPU",
                             "Leave out --device to run on the CPU")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        if dtype not in DTYPES:
            raise UsageError(f"Unknown dtype {dtype!r}", f"Use one of: {', '.join(sorted(DTYPES))}")
        return DTYPES[dtype]
    if device.type == "cuda":
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)  # emulated bf16 is slow
        return torch.bfloat16 if native_bf16 else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def load_pipeline(
    model: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    config: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> DiffusionPipeline:
    """Load a Stable Diffusion pipeline (SD 1.x, 2.x or SDXL) the way diffusers does, frozen for anybody.

    `model`: a Hub id ("CompVis/stable-diffusion-v1-4"), a local diffusers folder, a single
    `.safetensors`/`.ckpt` file, or a built-in tiny model name ("tiny", built from `seed`). Default: the
    `ANYBODY_MODEL` environment variable, else `anybody.settings.DEFAULT_MODEL`. `config` is a local
    diffusers folder (or Hub id) giving the layout of a single checkpoint file when offline.
    """
    from anybody import settings

    source = str(model) if model is not None else settings.default_model()
    chosen_device = pick_device(device)
    chosen_dtype = pick_dtype(chosen_device, dtype)
    if are_progress_bars_disabled():
        diffusers_logging.disable_progress_bar()
    pipe = _load(source, chosen_dtype, config, seed)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.requires_grad_(False)
            module.eval()
    pipe.to(chosen_device)
    pipe.set_progress_bar_config(disable=True)
    pipe.anybody_source = source  # the name the user gave, recorded in identity files and images
    return pipe


def describe_model(pipe: DiffusionPipeline) -> str:
    """The model as the user named it (what identity files and image metadata record)."""
    return str(getattr(pipe, "anybody_source", None) or pipe.config.get("_name_or_path", "unknown"))


def model_family(pipe: DiffusionPipeline) -> Family:
    """SD 1.x, SD 2.x or SDXL, read from the loaded components rather than from names."""
    text = pipe.text_encoder.config
    return family_of_encoders(text.hidden_act, text.hidden_size,
                              second_encoder=getattr(pipe, "text_encoder_2", None) is not None)


def _load(source: str, dtype: torch.dtype, config: str | os.PathLike[str] | None, seed: int) -> DiffusionPipeline:
    located = locate_model(source)
    if located.kind == "tiny":
        return _from_folder(tiny_model_folder(source, seed), dtype)
    if located.kind == "folder":
        return _from_folder(located.path, dtype)
    if located.kind == "cache":
        return _from_folder(located.path, dtype, f"The model {source} (cached in {located.path})")
    if located.kind == "file":
        return _from_single_file(located.path, dtype, config)
    return _from_hub(source, dtype)


def _from_folder(folder: Path, dtype: torch.dtype, label: str | None = None) -> DiffusionPipeline:
    try:
        components = read_index(folder) or {}
        # SD 1.x/2.x folders may name a safety checker (not loaded: anybody draws what the prompt asks).
        extra = {"safety_checker": None, "requires_safety_checker": False} if "safety_checker" in components else {}
        variant = folder_selection(folder, components, half=dtype in (torch.float16, torch.bfloat16)).variant
        return DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, low_cpu_mem_usage=True, variant=variant,
                                                 **extra)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelError(f"{label or f'The diffusers folder {folder}'} could not be loaded "
                         f"({summarize(error, limit=200)})",
                         "Check that every component folder is complete, or download the model again") from error


def _from_single_file(path: Path, dtype: torch.dtype, config: str | os.PathLike[str] | None) -> DiffusionPipeline:
    pipeline_class = StableDiffusionXLPipeline if _looks_like_sdxl(path) else StableDiffusionPipeline
    try:
        return pipeline_class.from_single_file(
            str(path), torch_dtype=dtype, config=str(config) if config else None, low_cpu_mem_usage=True,
            safety_checker=None, requires_safety_checker=False,
        )
    except Exception as error:  # diffusers raises many kinds here: all mean the same to a user
        refused = _refused_pickle(error)
        if refused is not None:
            raise ModelError(
                f"The checkpoint {path} carries Python code or objects beyond plain tensors ({refused}), so it was "
                "not loaded: loading it could run that code",
                "Use a .safetensors version of the model, or convert this one only if you trust its source",
            ) from error
        raise ModelError(
            f"The checkpoint {path} could not be loaded ({summarize(error, limit=200)})",
            "Check that the file is complete; offline, also pass --config with a local diffusers folder of "
            "the same architecture (from_single_file needs its layout)",
        ) from error


def _refused_pickle(error: BaseException) -> str | None:
    """What `torch.load(weights_only=True)` refused, if that is why diffusers could not read the file."""
    refused, seen = None, error
    while seen is not None:
        if isinstance(seen, pickle.UnpicklingError):
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(seen))
            if found or "weights only load failed" in str(seen).lower():
                refused = f"it imports {found.group(1)}" if found else refused or "objects torch will not load safely"
        seen = seen.__cause__ or seen.__context__
    return refused


def _looks_like_sdxl(path: Path) -> bool:
    """SDXL checkpoints carry a second text encoder under `conditioner.embedders.1`."""
    if path.suffix.lower() != ".safetensors":
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return any(key.startswith("conditioner.embedders.1.") for key in handle.keys())  # noqa: SIM118
    except Exception:
        return False  # an unreadable file is reported by the loader with its own message


def _from_hub(repo_id: str, dtype: torch.dtype) -> DiffusionPipeline:
    try:
        return DiffusionPipeline.from_pretrained(repo_id, torch_dtype=dtype, low_cpu_mem_usage=True,
                                                 safety_checker=None, requires_safety_checker=False)
    except Exception as error:
        raise ModelError(
            f"The model {repo_id} could not be loaded from the Hugging Face Hub ({summarize(error, limit=300)})",
            f"Download it with anybody models download {repo_id} (or hf download {repo_id}) and run again, or pass "
            "a local diffusers folder or .safetensors file, or --model tiny",
        ) from error


def text_encoders(pipe: DiffusionPipeline) -> list[tuple[str, object, torch.nn.Module]]:
    """(component name, tokenizer, text encoder) for each text encoder: one for SD 1.x/2.x, two for SDXL."""
    pairs = [("text_encoder", pipe.tokenizer, pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        pairs.append(("text_encoder_2", pipe.tokenizer_2, pipe.text_encoder_2))
    return pairs
