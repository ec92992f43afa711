"""The diffusers pipeline that draws given inputs: inpainting, img2img, ControlNet, or the plain one.

Each is made from the loaded pipeline with diffusers' `AutoPipelineFor*.from_pipe`, which shares its
components (the UNet, the text encoders with the identities' tokens, the hooks and attention processors
anybody put on them, the scheduler): the model is never loaded twice, and everything `apply` installed works
unchanged. A ControlNet is checked against the UNet (cross-attention width, added embeddings, block widths)
before its weights are read, so one made for another family is refused before anything is drawn.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from diffusers import (
    AutoPipelineForImage2Image,
    AutoPipelineForInpainting,
    AutoPipelineForText2Image,
    ControlNetModel,
    DiffusionPipeline,
)
from PIL import Image

from anybody.errors import ModelError, UsageError, summarize
from anybody.generation import defaults
from anybody.generation.checks import MAX_SIDE
from anybody.generation.inputs import SINGLE_FILE_SUFFIXES, ControlNetSource, DrawInputs, controlnet_name
from anybody.models import model_family
from anybody.models.tiny import INPAINT_CHANNELS, build_tiny_controlnet

FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
TINY_CONTROLNET = "tiny"
# What a ControlNet shares with the UNet it steers: its residuals are added to the UNet's blocks (widths),
# it reads the same prompt encoding (cross-attention width) and, for SDXL, the same added embeddings.
MUST_MATCH = ("cross_attention_dim", "block_out_channels", "addition_embed_type",
              "projection_class_embeddings_input_dim")


def drawing_pipeline(pipe: DiffusionPipeline, inputs: DrawInputs, height: int | None,
                     width: int | None) -> tuple[DiffusionPipeline, dict[str, object]]:
    """The pipeline for these inputs, made from `pipe`'s components, and the arguments its call takes
    beyond the prompt and the sampling settings (the pictures, strength, control scale, size)."""
    inpainting_model = pipe.unet.config.in_channels == INPAINT_CHANNELS
    if inpainting_model and inputs.task != "inpaint":
        raise UsageError("This is an inpainting model (its UNet reads a mask): it draws only into a picture",
                         "Pass --image and --mask (white = redraw), or use the model's ordinary version")
    controlnet = load_controlnet(inputs.controlnet, pipe) if inputs.control_image is not None else None
    extra = {"controlnet": controlnet} if controlnet is not None else {}
    arguments: dict[str, object] = {}
    if inputs.task == "inpaint":
        drawer = AutoPipelineForInpainting.from_pipe(pipe, **extra)
        box = crop_box(inputs.mask, defaults.MASK_PADDING)
        height, width = draw_size(pipe, (box[2] - box[0], box[3] - box[1]), height, width)
        # Only the mask's box (with some picture around it) is drawn, at the model's size; diffusers pastes
        # it back into the picture through the mask, so every pixel the mask leaves black is the input's.
        arguments.update(image=inputs.image, mask_image=inputs.mask, strength=inputs.strength,
                         padding_mask_crop=defaults.MASK_PADDING)
    elif inputs.task == "img2img":
        drawer = AutoPipelineForImage2Image.from_pipe(pipe, **extra)
        height, width = draw_size(pipe, inputs.image.size, height, width)
        # The img2img pipelines draw at the picture's own size (most take no height or width): give it the size.
        arguments.update(image=inputs.image.resize((width, height), Image.Resampling.LANCZOS),
                         strength=inputs.strength)
        if controlnet is not None:
            arguments["control_image"] = inputs.control_image.resize((width, height), Image.Resampling.LANCZOS)
        height = width = None
    elif controlnet is not None:
        drawer = AutoPipelineForText2Image.from_pipe(pipe, **extra)
        height, width = draw_size(pipe, inputs.control_image.size, height, width)
    else:
        drawer = pipe
    if controlnet is not None:  # the text-to-image ControlNet pipelines call it `image`, the others `control_image`
        arguments.setdefault("control_image" if inputs.task != "text2img" else "image", inputs.control_image)
        arguments["controlnet_conditioning_scale"] = inputs.control_scale
    if height is not None:
        arguments.update(height=height, width=width)
    drawer.set_progress_bar_config(disable=True)
    return drawer, arguments


def crop_box(mask, padding: int) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) around the mask's white, widened by `padding` within the picture."""
    left, top, right, bottom = mask.getbbox()
    return (max(left - padding, 0), max(top - padding, 0), min(right + padding, mask.width),
            min(bottom + padding, mask.height))


def draw_size(pipe: DiffusionPipeline, shape: tuple[int, int], height: int | None,
              width: int | None) -> tuple[int, int]:
    """(height, width) to draw a picture of `shape` (width, height) at: the model's own number of pixels
    (512 x 512 for SD 1.5, 1024 x 1024 for SDXL) in the picture's proportions, in multiples of 8; a height
    or width that was asked for is kept, and the other side follows the proportions."""
    aspect = shape[0] / shape[1]
    if height is not None and width is not None:
        return height, width
    if height is not None:
        return height, _multiple_of_8(height * aspect)
    if width is not None:
        return _multiple_of_8(width / aspect), width
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return _multiple_of_8(side / math.sqrt(aspect)), _multiple_of_8(side * math.sqrt(aspect))


def _multiple_of_8(value: float) -> int:
    return min(max(8, round(value / 8) * 8), MAX_SIDE)


def load_controlnet(source: ControlNetSource, pipe: DiffusionPipeline) -> ControlNetModel:
    """The ControlNet `source` names ("tiny", a Hub id, a diffusers folder, a single file, or a loaded
    `ControlNetModel`), checked to fit the pipeline's UNet, on its device and dtype."""
    if isinstance(source, ControlNetModel):
        check_controlnet_fits(source.config, pipe, controlnet_name(source))
        return source
    name = str(source)
    if name == TINY_CONTROLNET:
        return build_tiny_controlnet(pipe)
    path = Path(name).expanduser()
    dtype, device = pipe.unet.dtype, pipe.unet.device
    try:
        if path.is_file() and path.suffix.lower() in SINGLE_FILE_SUFFIXES:
            controlnet = ControlNetModel.from_single_file(str(path), torch_dtype=dtype)
        else:
            check_controlnet_fits(ControlNetModel.load_config(name), pipe, name)  # before the weights are read
            controlnet = ControlNetModel.from_pretrained(name, torch_dtype=dtype, low_cpu_mem_usage=True)
    except (ModelError, UsageError):
        raise
    except Exception as error:  # diffusers and the Hub raise many kinds here: all mean the same to a user
        local = path.exists() or os.sep in name
        where = "a readable ControlNet folder or file" if local else "available from the Hugging Face Hub here"
        raise ModelError(f"The ControlNet {name!r} could not be loaded: it is not {where} "
                         f"({summarize(error, limit=200)})",
                         "Pass a ControlNet's diffusers folder, .safetensors file or Hub id (downloaded where you "
                         "are online with hf download ID), or tiny for a tiny model") from error
    check_controlnet_fits(controlnet.config, pipe, name)
    controlnet.anybody_source = name
    return controlnet.to(device).requires_grad_(False).eval()


def check_controlnet_fits(config: dict, pipe: DiffusionPipeline, name: str) -> None:
    """A UsageError naming both families when the ControlNet was made for another kind of UNet."""
    unet = pipe.unet.config
    differs = [key for key in MUST_MATCH if _normal(config.get(key)) != _normal(unet.get(key))]
    if differs:
        made_for = _family_of(config)
        raise UsageError(
            f"The ControlNet {name} was made for {made_for} (cross-attention width {config.get('cross_attention_dim')}"
            f"); this {FAMILY_NAMES[model_family(pipe)]} model has width {unet.get('cross_attention_dim')} "
            f"({', '.join(differs)} differ)", f"Use a ControlNet made for {FAMILY_NAMES[model_family(pipe)]} models, "
            "or the model the ControlNet was made for")


def _family_of(config: dict) -> str:
    if config.get("addition_embed_type") == "text_time":
        return "an SDXL model"
    return {768: "an SD 1.x model", 1024: "an SD 2.x model"}.get(config.get("cross_attention_dim"), "another model")


def _normal(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value
