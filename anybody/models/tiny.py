"""The built-in `tiny` model: a small Stable Diffusion 1.x with random weights, built in code.

It has the real architecture classes (CLIP text encoder, UNet2DConditionModel, AutoencoderKL, the SD 1.x
noise schedule) and the real CLIP tokenizer, so every code path is the one a real model takes; only the
sizes are small and the weights random, which makes its pictures noise. It is deterministic from a seed
and saved once as an ordinary diffusers folder under `ANYBODY_HOME/models/`, then loaded like any other
local model.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from anybody import settings
from anybody.models.tokenizer import MAX_LENGTH, clip_tokenizer

TINY_NAMES = ("tiny",)
BUILD_VERSION = 1  # bump when the recipe below changes, so caches are rebuilt
TEXT_WIDTH = 32


def build_tiny_pipeline(seed: int = 0) -> StableDiffusionPipeline:
    """Build the tiny SD 1.x pipeline in memory; the same seed gives the same weights."""
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_WIDTH,
            intermediate_size=4 * TEXT_WIDTH,
            projection_dim=TEXT_WIDTH,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_LENGTH,
            hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    _sharpen_cross_attention(unet)
    vae = AutoencoderKL(
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=128,
    )
    scheduler = PNDMScheduler(  # what SD 1.x repositories ship; anybody switches to DDIM for generation
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sharpen_cross_attention(unet: UNet2DConditionModel, factor: float = 4.0) -> None:
    """Scale the random query and key weights of every cross-attention so that it attends selectively.

    With default initialisation the attention scores are near zero, every pixel attends to all 77 tokens
    alike, and the UNet sees only the average of the prompt: two identity tokens could not be told apart.
    A trained model attends selectively; this makes the random one do so too.
    """
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith("attn2"):
                module.to_q.weight.mul_(factor)
                module.to_k.weight.mul_(factor)


def tiny_model_folder(name: str = "tiny", seed: int = 0) -> Path:
    """The diffusers folder of a built-in tiny model, built and saved on first use."""
    folder = settings.models_folder() / f"{name}-seed{seed}-v{BUILD_VERSION}"
    if (folder / "model_index.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build_tiny_pipeline(seed).save_pretrained(staging, safe_serialization=True)
        try:
            staging.rename(folder)  # atomic: a half-built model is never seen under the final name
        except OSError:
            if not (folder / "model_index.json").is_file():  # not built meanwhile by another process
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
