"""Where the UNet's cross-attention layers are, and at which query resolution each one runs.

Methods speak of "the 32x32 cross-attention level" (SeFi-IDE at 512 px on SD 1.x), but that number
belongs to one model at one image size. Here every resolution is derived from the UNet's own block
structure (which down blocks downsample, the mirrored up path, the mid block) and the latent size, so the
same code serves the tiny test model, SD 1.x/2.x and SDXL at any image size. Nothing runs a forward pass:
it reads module structure only, so it works on a UNet built on the `meta` device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from anybody.errors import ModelError, UsageError, misuse
from anybody.methods.sefi import ATTENTION_LEVEL

Resolution = tuple[int, int]  # (height, width) of the query grid, in latent pixels

SEFI_LEVEL = ATTENTION_LEVEL  # SeFi-IDE's 32x32 at 512 px on SD 1.x: the second-highest cross-attention resolution


@dataclass(frozen=True)
class CrossAttentionLayer:
    """One cross-attention module: its name in `unet.named_modules()`, where it sits, what it sees."""

    name: str  # e.g. "down_blocks.1.attentions.0.transformer_blocks.0.attn2"
    block: str  # "down_blocks.1", "mid_block" or "up_blocks.2"
    resolution: Resolution  # query grid (height, width) at the given latent size
    heads: int
    head_dim: int

    @property
    def processor_key(self) -> str:
        """The key of this layer in `unet.attn_processors` / `unet.set_attn_processor`."""
        return f"{self.name}.processor"


def as_resolution(size: int | Resolution) -> Resolution:
    """An int means a square; a pair is (height, width)."""
    try:
        pair = (int(size), int(size)) if isinstance(size, int) else tuple(int(value) for value in size)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise misuse(f"A size must be a positive int or a (height, width) pair, not {size!r}",
                     "Pass for example 64 or (64, 48)")
    return pair  # type: ignore[return-value]


def _halve(size: Resolution) -> Resolution:
    # A stride-2, padding-1, 3x3 conv (diffusers' Downsample2D) gives ceil(n / 2).
    return (-(-size[0] // 2), -(-size[1] // 2))


def block_resolutions(unet: torch.nn.Module, latent_size: int | Resolution | None = None) -> dict[str, Resolution]:
    """The query resolution inside every down, mid and up block for a latent of `latent_size`.

    Down block i runs at the size left by the downsamplers of blocks 0..i-1; the mid block at the size
    after all of them; the up path mirrors the down path (diffusers upsamples each up block to the size
    of the skip connection it consumes next), so up block j runs where down block n-1-j ran.
    """
    latent = as_resolution(latent_size if latent_size is not None else _native_latent_size(unet))
    down_blocks = getattr(unet, "down_blocks", None)
    up_blocks = getattr(unet, "up_blocks", None)
    if down_blocks is None or up_blocks is None:
        raise ModelError(f"{type(unet).__name__} has no down_blocks/up_blocks: it is not a UNet anybody knows",
                         "Use a Stable Diffusion UNet (UNet2DConditionModel)")
    if len(up_blocks) != len(down_blocks):
        raise ModelError(f"The UNet has {len(down_blocks)} down blocks but {len(up_blocks)} up blocks",
                         "Use a UNet whose up path mirrors its down path (every Stable Diffusion UNet does)")
    sizes: dict[str, Resolution] = {}
    size = latent
    down_sizes: list[Resolution] = []
    for index, block in enumerate(down_blocks):
        sizes[f"down_blocks.{index}"] = size
        down_sizes.append(size)
        if getattr(block, "downsamplers", None) is not None:
            size = _halve(size)
    sizes["mid_block"] = size
    for index in range(len(up_blocks)):
        sizes[f"up_blocks.{index}"] = down_sizes[len(down_sizes) - 1 - index]
    return sizes


def _native_latent_size(unet: torch.nn.Module) -> int | Resolution:
    config = getattr(unet, "config", None)
    sample_size = getattr(config, "sample_size", None)
    if isinstance(sample_size, int):
        return sample_size
    if isinstance(sample_size, (list, tuple)) and len(sample_size) == 2:
        return (int(sample_size[0]), int(sample_size[1]))
    raise UsageError("The UNet does not say its latent size", "Pass latent_size (image size / VAE scale factor)")


def _block_of(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "mid_block":
        return "mid_block"
    if parts[0] in ("down_blocks", "up_blocks") and len(parts) > 1:
        return f"{parts[0]}.{parts[1]}"
    raise ModelError(f"The cross-attention layer {name} is outside the UNet's down, mid and up blocks",
                     "Use a Stable Diffusion UNet (UNet2DConditionModel)")


def cross_attention_modules(unet: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of every diffusers `Attention` built with a `cross_attention_dim`: the text layers."""
    return [(name, module) for name, module in unet.named_modules()
            if hasattr(module, "set_processor") and getattr(module, "is_cross_attention", False)]


def cross_attention_layers(
    unet: torch.nn.Module, latent_size: int | Resolution | None = None
) -> list[CrossAttentionLayer]:
    """Every cross-attention module of the UNet (text conditioning), in forward order, with its resolution.

    `latent_size` defaults to the UNet's native `sample_size` (64 for SD 1.x = 512 px images).
    A module counts as cross-attention when diffusers built it with a `cross_attention_dim`
    (`Attention.is_cross_attention`): the layers whose keys and values come from the prompt.
    """
    sizes = block_resolutions(unet, latent_size)
    layers = []
    for name, module in cross_attention_modules(unet):
        heads = int(module.heads)
        layers.append(CrossAttentionLayer(name=name, block=_block_of(name), resolution=sizes[_block_of(name)],
                                          heads=heads, head_dim=module.to_q.out_features // heads))
    return layers


def cross_attention_resolutions(
    unet: torch.nn.Module, latent_size: int | Resolution | None = None
) -> list[Resolution]:
    """The distinct resolutions at which the UNet has cross-attention, highest first."""
    found = {layer.resolution for layer in cross_attention_layers(unet, latent_size)}
    return sorted(found, key=lambda size: size[0] * size[1], reverse=True)


def resolution_for(unet: torch.nn.Module, latent_size: int | Resolution | None = None,
                   level: int = SEFI_LEVEL) -> Resolution:
    """The query resolution of a cross-attention level: 0 the highest, 1 the second-highest, -1 the lowest.

    SeFi-IDE's loss uses level 1 (32x32 for SD 1.x at 512 px, whose levels are 64, 32, 16, 8); asking
    by level instead of by size keeps that choice meaningful at other image sizes and on other models.
    """
    levels = cross_attention_resolutions(unet, latent_size)
    if not levels:
        raise ModelError("This UNet has no cross-attention layers", "Use a text-conditioned Stable Diffusion UNet")
    if not -len(levels) <= level < len(levels):
        shown = ", ".join(f"{h}x{w}" for h, w in levels)
        raise UsageError(f"Cross-attention level {level} does not exist: this UNet has {len(levels)} ({shown})",
                         f"Choose a level from 0 to {len(levels) - 1}")
    return levels[level]


def latent_size_of(pipe: object, height: int, width: int | None = None) -> Resolution:
    """The latent (height, width) a pipeline uses for an image of `height` x `width` pixels."""
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    width = height if width is None else width
    if height % factor or width % factor:
        raise UsageError(f"An image of {height}x{width} pixels does not divide by the VAE factor {factor}",
                         f"Use sizes that are multiples of {factor}")
    return (height // factor, width // factor)
