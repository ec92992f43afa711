"""Keeping each identity's tokens inside its region, in every cross-attention layer of the UNet.

`drawn_in_regions(pipe, prompt, {tokens: region}, guidance_scale)` is a context manager: inside it, any
call of `pipe` (or of a pipeline made from it with `from_pipe`, which shares its UNet) draws each identity
only inside its region. anybody's `CrossAttentionProcessor`s are installed on the UNet for the duration,
with an `AttentionStore` whose `regions` is a `RegionMasks`; a SeFi-IDE `StageSwitch` keeps working, since
it hands its per-stage keys and values to whichever store is installed.

How the masking works, and why this way: at each cross-attention layer, for the columns of an identity's
tokens, `log m` is added to the attention logits, where `m` is the region's soft mask at that layer's
resolution (1 inside, 0 outside, a linear ramp across the feathered edge). That is the same as
multiplying the identity's attention probabilities by `m` and renormalising each pixel's row: outside
the region the identity's share goes to the other words of the prompt, in proportion to what they had.
So the rest of the prompt stays free (its words keep their relative weights at every pixel, and a pixel
still attends with a total weight of one, the statistics the UNet was trained on), whereas zeroing the
identity's probabilities without renormalising would shrink the attention output wherever the identity
had attended, a change the UNet never saw. A mask of 0 becomes a large finite negative (`BLOCKED`), not
-inf, so that half precision stays finite.

Under classifier-free guidance diffusers runs the unconditional rows first and the prompt's rows second;
only the second half is masked (the unconditional prompt holds no identity token at those positions).
The layer's grid comes from the latent the UNet is called with (a forward pre-hook reads its height and
width) and the UNet's own block structure (`block_resolutions`), so every layer of every model, at any
image size and aspect, gets its own exact mask; a layer of a size those blocks do not give (a UNet that
resizes otherwise) gets the grid of its query length closest to the latent's proportions. The words after
an identity in a CLIP encoding (the end and padding tokens) have read the identity through the text
encoder's causal attention and stay free; they carry the whole prompt's gist, not the face.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence

import torch

from anybody.attention.layers import Resolution, block_resolutions
from anybody.attention.processors import install
from anybody.attention.regions import FEATHER, Region
from anybody.attention.store import AttentionStore
from anybody.attention.tokens import pipeline_prompt, token_positions
from anybody.errors import UsageError, misuse

BLOCKED = -1e4
"""The logit bias where a mask is 0: exp(-1e4) is 0 in every precision, and it stays finite in fp16."""


def soft_mask(region: Region, height: int, width: int, feather: float = FEATHER) -> torch.Tensor:
    """(height, width) float32 in [0, 1]: 1 inside the region, 0 outside, a linear ramp across each edge.

    The ramp is `feather` of the picture's side wide (at least one pixel of this grid, so every layer gets
    a soft edge and a small region never vanishes at a coarse one), centred on the edge. An edge on the
    picture's border has no ramp: nothing lies beyond it. Values are taken at pixel centres.
    """

    def axis(low: float, high: float, size: int) -> torch.Tensor:
        ramp = max(feather, 1.0 / size)
        centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        rising = torch.ones(size) if low <= 0.0 else ((centres - low) / ramp + 0.5).clamp(0.0, 1.0)
        falling = torch.ones(size) if high >= 1.0 else ((high - centres) / ramp + 0.5).clamp(0.0, 1.0)
        return rising * falling

    return axis(region.top, region.bottom, height)[:, None] * axis(region.left, region.right, width)[None, :]


def nearest_grid(pixels: int, latent: Resolution) -> Resolution:
    """The (height, width) with height * width = `pixels` whose proportions are closest to the latent's."""
    aspect = latent[0] / latent[1]
    sides = [side for side in range(1, math.isqrt(pixels) + 1) if pixels % side == 0]
    pairs = [pair for side in sides for pair in ((side, pixels // side), (pixels // side, side))]
    return min(pairs, key=lambda pair: abs(math.log(pair[0] / pair[1] / aspect)))


def is_guided(unet: torch.nn.Module, guidance_scale: float) -> bool:
    """Whether diffusers runs classifier-free guidance (unconditional rows, then the prompt's): its own rule,
    a scale above 1 on a UNet without a guidance embedding (`time_cond_proj_dim`, as LCM models have)."""
    return guidance_scale > 1 and getattr(unet.config, "time_cond_proj_dim", None) is None


class RegionMasks:
    """Which token columns are kept in which region, and the logit bias that does it at each layer.

    `columns` pairs the token positions of one identity (in the padded encoding) with its region. `guided`:
    the UNet runs unconditional rows then the prompt's rows (only the latter are masked). The bias of a
    layer is built once per (pixels, batch, tokens, dtype, device) and latent size, then reused at every
    denoising step.
    """

    def __init__(self, columns: Sequence[tuple[Sequence[int], Region]], *, guided: bool,
                 feather: float = FEATHER) -> None:
        self.columns = [(tuple(positions), region) for positions, region in columns]
        self.guided = guided
        self.feather = feather
        self.latent: Resolution | None = None  # of the current UNet call, read by `attached`
        self.grids: dict[int, Resolution] = {}  # query pixels -> (height, width) at that latent
        self._biases: dict[tuple, torch.Tensor] = {}

    @classmethod
    def for_prompt(cls, pipe: object, prompt: str, regions: Mapping[Sequence[str], Region],
                   guidance_scale: float, feather: float = FEATHER) -> RegionMasks:
        """The masks of `prompt` as `pipe` encodes it; `regions` maps an identity's token strings
        ("<alice>", "<alice>_1") to its region."""
        converted = pipeline_prompt(pipe, prompt)
        columns = []
        for tokens, region in regions.items():
            try:
                positions = token_positions(pipe.tokenizer, converted, list(tokens))
            except UsageError as error:
                raise UsageError(f"The region of {tokens[0]} cannot apply: its word is not among the "
                                 f"{pipe.tokenizer.model_max_length} tokens the text encoder reads",
                                 "Name the identity earlier in the prompt, or shorten the prompt") from error
            columns.append((positions, region))
        return cls(columns, guided=is_guided(pipe.unet, guidance_scale), feather=feather)

    def attach(self, unet: torch.nn.Module) -> torch.utils.hooks.RemovableHandle:
        """Read the latent size of every call of `unet` (and so each layer's grid); `install` calls this for a
        store that has regions, and removes the hook with its processors."""

        def read_latent(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            sample = kwargs.get("sample", args[0] if args else None)
            latent = (int(sample.shape[-2]), int(sample.shape[-1]))
            if latent != self.latent:
                self.latent = latent
                self.grids = {h * w: (h, w) for h, w in block_resolutions(module, latent).values()}

        return unet.register_forward_pre_hook(read_latent, with_kwargs=True)

    def grid(self, pixels: int) -> Resolution:
        """The (height, width) of a layer with this many query pixels, in the current UNet call: the UNet's own
        grid of that size, else (a UNet whose blocks resize otherwise) the factorisation of `pixels` closest
        to the latent's proportions."""
        if self.latent is None:
            raise misuse("The masks have not seen a UNet call, so they know no layer's grid",
                         "Set store.regions before install(unet, store), which reads the latent size", RuntimeError)
        if pixels not in self.grids:
            self.grids[pixels] = nearest_grid(pixels, self.latent)
        return self.grids[pixels]

    def bias(self, pixels: int, batch: int, tokens: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """(batch, 1, pixels, tokens): the logit bias of one layer, broadcast over its heads."""
        height, width = self.grid(pixels)
        key = (pixels, height, width, batch, tokens, dtype, device)
        if key not in self._biases:
            if self.guided and batch % 2:
                raise misuse(f"Guidance is on but the UNet ran an odd batch of {batch}",
                             "Build the masks with the pipeline's guidance scale", RuntimeError)
            columns = torch.zeros(pixels, tokens)
            for positions, region in self.columns:
                mask = soft_mask(region, height, width, self.feather).reshape(pixels, 1)
                columns[:, [position for position in positions if position < tokens]] = mask.log().clamp_min(BLOCKED)
            bias = torch.zeros(batch, 1, pixels, tokens)
            bias[batch // 2 if self.guided else 0 :, 0] = columns
            self._biases[key] = bias.to(device=device, dtype=dtype)
        return self._biases[key]


@contextlib.contextmanager
def drawn_in_regions(pipe: object, prompt: str, regions: Mapping[Sequence[str], Region],
                     guidance_scale: float) -> Iterator[RegionMasks | None]:
    """Inside, `pipe(prompt, guidance_scale=...)` keeps each identity's tokens in its region (nothing is
    done when `regions` is empty). `prompt` is the one the pipeline is called with."""
    if not regions:
        yield None
        return
    masks = RegionMasks.for_prompt(pipe, prompt, regions, guidance_scale)
    with install(pipe.unet, AttentionStore(regions=masks)):
        yield masks
