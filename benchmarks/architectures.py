"""Full-size Stable Diffusion architectures with random weights, for honest timings and memory.

The sizes are those of the published model configurations (SD 1.5: 859.5 M UNet parameters, CLIP
ViT-L/14 text encoder 123 M; SD 2.x: OpenCLIP ViT-H text encoder, 1024 wide, 23 layers, linear
projections, v-prediction; SDXL: CLIP-L plus OpenCLIP bigG (1280, pooled projection), the 2.6 B UNet with
1, 2 and 10 transformer layers per level). No weights can be downloaded here; random ones cost the same
time and memory per step.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from anybody.models.tokenizer import clip_tokenizer

SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


def _text_config(width: int, layers: int, heads: int, activation: str, pad: int, projection: int | None = None
                 ) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=49408, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                          num_attention_heads=heads, max_position_embeddings=77, hidden_act=activation,
                          projection_dim=projection or width, bos_token_id=49406, eos_token_id=49407,
                          pad_token_id=pad)


def _vae(**extra: object) -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2, **extra)


def _frozen(pipe, name: str):
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False).eval()
    pipe.anybody_source = name
    return pipe


def random_sd2(seed: int = 0) -> StableDiffusionPipeline:
    """SD 2.1 (768-v): OpenCLIP ViT-H text encoder (the 23 layers SD uses), linear projections, v-prediction."""
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(pad_token="!")
    text_encoder = CLIPTextModel(_text_config(1024, 23, 16, "gelu", pad=0, projection=512))
    unet = UNet2DConditionModel(
        sample_size=96, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    scheduler = DDIMScheduler(**SCHEDULE, prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False)
    return _frozen(StableDiffusionPipeline(vae=_vae(sample_size=768), text_encoder=text_encoder, tokenizer=tokenizer,
                                           unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False), "random-sd2")


def random_sdxl(seed: int = 0) -> StableDiffusionXLPipeline:
    """SDXL base 1.0: CLIP ViT-L (768) + OpenCLIP bigG (1280, projection 1280), the 2.6 B UNet."""
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(768, 12, 12, "quick_gelu", pad=49407))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(1280, 32, 20, "gelu", pad=0, projection=1280))
    unet = UNet2DConditionModel(
        sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
        attention_head_dim=(5, 10, 20), use_linear_projection=True, transformer_layers_per_block=(1, 2, 10),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
    scheduler = EulerDiscreteScheduler(**SCHEDULE, timestep_spacing="leading")
    return _frozen(StableDiffusionXLPipeline(
        vae=_vae(sample_size=1024, scaling_factor=0.13025, force_upcast=True), text_encoder=text_encoder,
        text_encoder_2=text_encoder_2, tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(pad_token="!"),
        unet=unet, scheduler=scheduler, add_watermarker=False), "random-sdxl")


def random_sd15(seed: int = 0) -> StableDiffusionPipeline:
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    text_encoder = CLIPTextModel(_text_config(768, 12, 12, "quick_gelu", pad=49407))
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    scheduler = DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False)
    return _frozen(StableDiffusionPipeline(vae=_vae(sample_size=512), text_encoder=text_encoder, tokenizer=tokenizer,
                                           unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False), "random-sd15")
