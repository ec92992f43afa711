"""Attention heatmaps a person can look at, like SeFi-IDE's Figure 1: where each word of a prompt acts.

The evidence for "attention overfit" is visual: the identity word's map covers the whole picture and
the "cup" map has nowhere left to go. `attention_heatmaps(pipe, prompt, path)` runs an ordinary
generation with recording processors, averages the maps over heads, layers of one resolution and
denoising steps (the conditional half only, under classifier-free guidance), and writes one PNG: the
picture, then every word's map (normalised per word) blended over it, the word written under each tile.
With regions (`RegionMasks`), the picture is drawn with them and each identity's tile shows its region
outlined, so a user sees the identity's attention stay inside its box.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from anybody.attention.layers import SEFI_LEVEL, Resolution, as_resolution, latent_size_of, resolution_for
from anybody.attention.processors import install
from anybody.attention.region_masks import RegionMasks
from anybody.attention.regions import Region
from anybody.attention.store import AttentionStore
from anybody.attention.tokens import PromptWord, pipeline_prompt, prompt_words
from anybody.errors import UsageError, misuse
from anybody.storage import write_with

# Jet's control points (position, red, green, blue): dark blue, blue, cyan, yellow, red, dark red.
_JET = np.array([
    [0.000, 0.0, 0.0, 0.5],
    [0.125, 0.0, 0.0, 1.0],
    [0.375, 0.0, 1.0, 1.0],
    [0.625, 1.0, 1.0, 0.0],
    [0.875, 1.0, 0.0, 0.0],
    [1.000, 0.5, 0.0, 0.0],
])


class AttentionAverager(AttentionStore):
    """A store that keeps a running sum instead of every map: a 50-step generation stays small.

    Each recorded layer call adds its head-averaged (batch, pixels, tokens) maps; `average()` divides by
    the number of calls, which is the mean over layers and steps. With `conditional_batch=n` and a UNet
    batch of 2n (classifier-free guidance: unconditional first, conditional second, as diffusers' pipelines
    concatenate them) only the conditional half is kept.
    """

    def __init__(self, resolution: int | Resolution, *, conditional_batch: int | None = None) -> None:
        super().__init__(resolution, keep_grad=False)
        self.conditional_batch = conditional_batch
        self.total: torch.Tensor | None = None
        self.count = 0

    def record(self, layer: str, heads: int, probabilities: torch.Tensor,
               reference: torch.Tensor | None = None) -> None:
        if not self.recording:
            return
        with torch.no_grad():
            maps = probabilities.detach().float()
            maps = maps.reshape(-1, heads, *maps.shape[1:]).mean(dim=1)  # (batch, pixels, tokens)
            wanted = self.conditional_batch
            if wanted is not None and maps.shape[0] == 2 * wanted:
                maps = maps[wanted:]
            elif wanted is not None and maps.shape[0] != wanted:
                raise misuse(f"The UNet ran batch {maps.shape[0]}, neither {wanted} images nor twice that "
                             "with guidance", "Pass conditional_batch = the number of images generated")
            self.total = maps if self.total is None else self.total + maps
            self.count += 1

    def clear(self) -> None:
        super().clear()
        self.total = None
        self.count = 0

    def average(self) -> torch.Tensor:
        """(batch, tokens, height, width): the mean map of every token position."""
        if self.total is None or self.resolution is None:
            raise misuse("No attention was recorded during the generation",
                         "Choose a resolution at which the UNet has cross-attention (resolution_for)", RuntimeError)
        height, width = self.resolution
        mean = self.total / self.count
        return mean.transpose(1, 2).reshape(mean.shape[0], mean.shape[2], height, width)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to jet colours: (..., 3) uint8. Cold = little attention, hot = much."""
    clipped = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    channels = [np.interp(clipped, _JET[:, 0], _JET[:, channel]) for channel in (1, 2, 3)]
    return np.round(np.stack(channels, axis=-1) * 255).astype(np.uint8)


def word_maps(maps: torch.Tensor, words: Sequence[PromptWord]) -> torch.Tensor:
    """(words, height, width): each word's map, the sum over its token positions, from (tokens, h, w)."""
    return torch.stack([maps[list(word.positions)].sum(dim=0) for word in words])


@dataclass
class HeatmapSheet:
    """The rendered sheet and where its tiles are: tile 0 is the picture, then one tile per word."""

    image: Image.Image
    labels: list[str]
    boxes: list[tuple[int, int, int, int]]  # (left, top, right, bottom) of each tile's picture area

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the sheet as a PNG, atomically."""
        write_with(path, lambda stream: self.image.save(stream, format="PNG"))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: object, width: int) -> str:
    """Shorten a label with an ellipsis until it fits its tile."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_heatmaps(
    picture: Image.Image,
    words: Sequence[PromptWord],
    maps: torch.Tensor,
    *,
    columns: int | None = None,
    tile: int = 256,
    alpha: float = 0.5,
    outlines: Mapping[int, Region] | None = None,
) -> HeatmapSheet:
    """Lay out the picture and one blended heatmap per word in a grid, each tile labelled.

    `maps` is (tokens, height, width) for this picture (`AttentionAverager.average()[i]`). Each word's
    map is upsampled to the tile and normalised on its own, so a weak word still shows where it acts;
    compare shapes between tiles, not brightness. `outlines` maps a word's index to a region drawn on its
    tile (a white box edged in black, visible on every colour of the map).
    """
    if not words:
        raise UsageError("The prompt has no words to draw", "Give a prompt with at least one word")
    scale = tile / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    base = np.asarray(picture.convert("RGB").resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    per_word = word_maps(maps.float().cpu(), words)
    upsampled = F.interpolate(per_word[:, None], size=(size[1], size[0]), mode="bilinear", align_corners=False)[:, 0]
    low = upsampled.amin(dim=(1, 2), keepdim=True)
    high = upsampled.amax(dim=(1, 2), keepdim=True)
    normalised = ((upsampled - low) / (high - low).clamp_min(1e-12)).numpy()

    tiles = [Image.fromarray(base.astype(np.uint8))]
    for index, heat in enumerate(normalised):
        blended = (1.0 - alpha) * base + alpha * colormap(heat).astype(np.float64)
        tiles.append(Image.fromarray(np.round(blended).astype(np.uint8)))
        if outlines and index in outlines:
            _outline(tiles[-1], outlines[index])
    labels = ["(picture)", *(word.text for word in words)]

    columns = columns or min(len(tiles), max(4, math.ceil(math.sqrt(len(tiles)))))
    rows = math.ceil(len(tiles) / columns)
    font = _font(max(10, size[0] // 12))
    gap = 4
    label_height = max(14, size[0] // 8)
    cell = (size[0] + gap, size[1] + label_height + gap)
    sheet = Image.new("RGB", (columns * cell[0] + gap, rows * cell[1] + gap), "white")
    draw = ImageDraw.Draw(sheet)
    boxes = []
    for index, (image, label) in enumerate(zip(tiles, labels, strict=True)):
        left = gap + (index % columns) * cell[0]
        top = gap + (index // columns) * cell[1]
        sheet.paste(image, (left, top))
        boxes.append((left, top, left + size[0], top + size[1]))
        text = _fit(draw, label, font, size[0])
        text_width = draw.textlength(text, font=font)
        draw.text((left + (size[0] - text_width) / 2, top + size[1] + 1), text, fill="black", font=font)
    return HeatmapSheet(sheet, labels, boxes)


def _outline(tile: Image.Image, region: Region) -> None:
    """Draw the region's box on the tile: 2 px of white between 1 px of black on each side."""
    width, height = tile.size
    box = [round(region.left * width), round(region.top * height),
           round(region.right * width) - 1, round(region.bottom * height) - 1]
    draw = ImageDraw.Draw(tile)
    for inset, colour in ((0, "black"), (1, "white"), (2, "white"), (3, "black")):
        draw.rectangle([box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset], outline=colour)


@dataclass
class HeatmapResult:
    """What `attention_heatmaps` produced: the generated picture, the sheet, the words and their maps."""

    picture: Image.Image
    sheet: HeatmapSheet
    words: list[PromptWord]
    maps: torch.Tensor  # (tokens, height, width), averaged over heads, layers and steps


def attention_heatmaps(
    pipe: object,
    prompt: str,
    path: str | os.PathLike[str] | None = None,
    *,
    level: int = SEFI_LEVEL,
    height: int | None = None,
    width: int | None = None,
    tile: int = 256,
    regions: RegionMasks | None = None,
    **pipe_kwargs: object,
) -> HeatmapResult:
    """Generate one picture with `pipe(prompt, ...)` and draw where each word of the prompt attended.

    `level` picks the cross-attention resolution (0 = highest; 1 = SeFi-IDE's 32x32 at 512 px on SD 1.x).
    `regions` (made for this prompt and guidance scale) keep identities in their regions while drawing,
    and each identity's tile shows its region. Any other keyword goes to the pipeline
    (num_inference_steps, guidance_scale, generator, ...). The processors the pipeline had are restored
    afterwards, even on error. With `path`, the sheet is written there as a PNG.
    """
    if pipe_kwargs.get("num_images_per_prompt", 1) != 1 or not isinstance(prompt, str):
        raise misuse("attention_heatmaps draws one picture from one prompt",
                     "Pass a single prompt string and leave num_images_per_prompt at 1")
    pipe_kwargs.pop("output_type", None)  # the sheet needs a PIL picture
    unet = pipe.unet
    if height is None and width is None:  # the model's native size, as the pipeline itself would pick
        factor = int(getattr(pipe, "vae_scale_factor", 8))
        native = as_resolution(unet.config.sample_size)
        height, width = native[0] * factor, native[1] * factor
    height = height or width
    width = width or height
    latent = latent_size_of(pipe, height, width)
    recorder = AttentionAverager(resolution_for(unet, latent, level), conditional_batch=1)
    recorder.regions = regions
    with install(unet, recorder):
        output = pipe(prompt, height=height, width=width, output_type="pil", **pipe_kwargs)
    picture = output.images[0]
    maps = recorder.average()[0]
    words = prompt_words(pipe.tokenizer, pipeline_prompt(pipe, prompt))
    outlines = {index: region for index, word in enumerate(words) for positions, region in
                (regions.columns if regions is not None else ()) if set(word.positions) & set(positions)}
    sheet = render_heatmaps(picture, words, maps, tile=tile, outlines=outlines)
    if path is not None:
        sheet.save(path)
    return HeatmapResult(picture, sheet, words, maps)
