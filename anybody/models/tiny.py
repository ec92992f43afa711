"""The built-in tiny models: small Stable Diffusion 1.x, 2.x and SDXL pipelines with random weights.

They have the real architecture classes (CLIP text encoders, UNet2DConditionModel, AutoencoderKL, each
family's noise schedule) and the real CLIP tokenizer, so every code path is the one a real model takes;
only the sizes are small and the weights random, which makes their pictures noise. The three differ the
way the real families do:
- `tiny` (SD 1.x): one CLIP text encoder (quick-GELU), padding with `<|endoftext|>`, epsilon prediction;
- `tiny-sd2` (SD 2.x): one OpenCLIP-style encoder (GELU), padding with "!", linear projections in the
  UNet's transformers, v-prediction;
- `tiny-sdxl` (SDXL): two encoders of different widths, the second with a projection whose pooled output
  feeds the UNet together with the size and crop "time ids".
The widths differ between models (and from every real model) on purpose, so nothing can assume one.
Each is deterministic from a seed and saved once as an ordinary diffusers folder under
`ANYBODY_HOME/models/`, then loaded like any other local model.

Each has an inpainting variant (`tiny-inpaint`, `tiny-sd2-inpaint`, `tiny-sdxl-inpaint`): the same text
encoders (so identities learned on the plain one fit), and a UNet that reads 9 channels (the latents, the
mask and the masked picture's latents), as the inpainting checkpoints of SD 1.5, SD 2 and SDXL do. And
`build_tiny_controlnet` makes a ControlNet with random weights that fits any of them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from anybody import settings
from anybody.errors import UsageError
from anybody.models.catalog import INPAINT_SUFFIX, TINY_NAMES
from anybody.models.tokenizer import MAX_LENGTH, clip_tokenizer
from anybody.storage import atomic_folder

LATENT_CHANNELS = 4
INPAINT_CHANNELS = 9  # the latents, the mask, the masked picture's latents
BUILD_VERSION = 1  # bump when a recipe below changes, so caches are rebuilt
# The noise schedule all three families were trained with (SD 2.x and SDXL kept SD 1.x's betas).
_SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
             "steps_offset": 1}


def build_tiny_pipeline(name: str = "tiny", seed: int = 0) -> DiffusionPipeline:
    """Build a tiny pipeline in memory; the same name and seed give the same weights."""
    builders = {"tiny": _tiny_sd1, "tiny-sd2": _tiny_sd2, "tiny-sdxl": _tiny_sdxl}
    base = name.removesuffix(INPAINT_SUFFIX)
    if name not in TINY_NAMES or base not in builders:
        raise UsageError(f"There is no built-in model called {name!r}", f"Use one of: {', '.join(TINY_NAMES)}")
    torch.manual_seed(seed)
    return builders[base](INPAINT_CHANNELS if name.endswith(INPAINT_SUFFIX) else LATENT_CHANNELS)


def build_tiny_controlnet(pipe: DiffusionPipeline, seed: int = 0) -> ControlNetModel:
    """A ControlNet with random weights that fits the pipeline's UNet (any family, any size), on its device
    and dtype; the same UNet layout and seed give the same weights, and the global random state is left alone.

    It has a trained ControlNet's architecture (`ControlNetModel.from_unet`: the UNet's encoder, reading the
    latents alone even beside a 9-channel inpainting UNet), but its output convolutions, which training starts
    at zero, are random too, so that the control image visibly steers the picture.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = ControlNetModel.from_unet(pipe.unet, load_weights_from_unet=False)
        latent_channels = pipe.vae.config.latent_channels
        if controlnet.config.in_channels != latent_channels:
            controlnet = ControlNetModel.from_config({**controlnet.config, "in_channels": latent_channels})
        with torch.no_grad():
            for module in (*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                           controlnet.controlnet_cond_embedding.conv_out):
                module.reset_parameters()
    controlnet.anybody_source = "tiny"
    return controlnet.to(pipe.unet.device, pipe.unet.dtype).requires_grad_(False).eval()


def _tiny_sd1(in_channels: int) -> StableDiffusionPipeline:
    tokenizer = clip_tokenizer()
    width = 32
    text_encoder = CLIPTextModel(_text_config(tokenizer, width, "quick_gelu"))
    unet = _sd_unet(width, in_channels, attention_head_dim=8)
    # What SD 1.x repositories ship; anybody switches to DDIM for generation.
    scheduler = PNDMScheduler(**_SCHEDULE, skip_prk_steps=True, set_alpha_to_one=False)
    pipeline_class = StableDiffusionInpaintPipeline if in_channels == INPAINT_CHANNELS else StableDiffusionPipeline
    return pipeline_class(vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=_sharpened(unet),
                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                          requires_safety_checker=False)


def _tiny_sd2(in_channels: int) -> StableDiffusionPipeline:
    tokenizer = clip_tokenizer(pad_token="!")
    width = 48
    text_encoder = CLIPTextModel(_text_config(tokenizer, width, "gelu"))
    unet = _sd_unet(width, in_channels, attention_head_dim=(4, 8, 8), use_linear_projection=True)  # as SD 2.x's
    scheduler = DDIMScheduler(**_SCHEDULE, prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False)
    pipeline_class = StableDiffusionInpaintPipeline if in_channels == INPAINT_CHANNELS else StableDiffusionPipeline
    return pipeline_class(vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=_sharpened(unet),
                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                          requires_safety_checker=False)


def _sd_unet(width: int, in_channels: int, **architecture: object) -> UNet2DConditionModel:
    """SD 1.x's and SD 2.x's UNet layout (cross-attention in the upper two levels), scaled down."""
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=width,
        norm_num_groups=8,
        **architecture,
    )


def _tiny_sdxl(in_channels: int) -> StableDiffusionXLPipeline:
    tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer(pad_token="!")
    width, width_2, time_embedding = 32, 40, 8
    text_encoder = CLIPTextModel(_text_config(tokenizer, width, "quick_gelu"))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2, width_2, "gelu"))
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 1, 2),
        cross_attention_dim=width + width_2,  # the two encoders' hidden states side by side
        attention_head_dim=(4, 8, 8),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embedding,
        # Six size/crop numbers, each embedded, plus the second encoder's pooled projection.
        projection_class_embeddings_input_dim=6 * time_embedding + width_2,
        norm_num_groups=8,
    )
    scheduler = EulerDiscreteScheduler(**_SCHEDULE, timestep_spacing="leading")
    pipeline_class = StableDiffusionXLInpaintPipeline if in_channels == INPAINT_CHANNELS else StableDiffusionXLPipeline
    return pipeline_class(vae=_vae(), text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                          tokenizer_2=tokenizer_2, unet=_sharpened(unet), scheduler=scheduler,
                          force_zeros_for_empty_prompt=True, add_watermarker=False)


def _text_config(tokenizer, width: int, activation: str) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=4 * width,
        projection_dim=width,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        hidden_act=activation,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=128,
    )


def _sharpened(unet: UNet2DConditionModel, factor: float = 4.0) -> UNet2DConditionModel:
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
    return unet


def tiny_model_folder(name: str = "tiny", seed: int = 0) -> Path:
    """The diffusers folder of a built-in tiny model, built and saved on first use."""
    folder = settings.models_folder() / f"{name}-seed{seed}-v{BUILD_VERSION}"
    if (folder / "model_index.json").is_file():
        return folder
    pipe = build_tiny_pipeline(name, seed)
    with atomic_folder(folder) as staging:
        pipe.save_pretrained(staging, safe_serialization=True)
    return folder
