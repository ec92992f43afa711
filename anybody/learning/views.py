"""Augmented views of the one photo, computed once before learning starts.

Each view applies the same random flip and colour jitter (brightness, contrast, saturation 0.8–1.2,
hue ±0.01) to the aligned face and to the recognizer's crop. The recognizer sees its crop as is; the
diffusion target is the face shrunk to 10–100 % of the canvas height (aspect 0.9–1.1) and pasted at a
random place on a black canvas (docs/method.md §1). Face features and VAE latents of every view are computed
here once, so a training step does no image work at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageEnhance

from anybody.face import FaceEncoder, FaceInput

JITTER = (0.8, 1.2)
HUE_SHIFT = 0.01
SCALE = (0.1, 1.0)
ASPECT = (0.9, 1.1)


@dataclass
class ViewBank:
    """`features` (views, feature_dim) and `latents` (views, channels, h, w) of one identity's views."""

    features: torch.Tensor
    latents: torch.Tensor


def jitter(image: Image.Image, flip: bool, factors: tuple[float, float, float, float]) -> Image.Image:
    """Flip, then scale brightness, contrast and saturation and shift the hue (a fraction of the circle)."""
    brightness, contrast, saturation, hue = factors
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = ImageEnhance.Brightness(image).enhance(brightness)
    image = ImageEnhance.Contrast(image).enhance(contrast)
    image = ImageEnhance.Color(image).enhance(saturation)
    if hue:
        hsv = np.asarray(image.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(hue * 255)) % 256
        image = Image.fromarray(hsv, "HSV").convert("RGB")
    return image


def paste_on_canvas(face: Image.Image, resolution: int, rng: random.Random) -> Image.Image:
    """The face shrunk to 10–100 % of the canvas height, at a random place on black."""
    height = max(8, round(resolution * rng.uniform(*SCALE)))
    width = min(resolution, max(8, round(height * rng.uniform(*ASPECT))))
    canvas = Image.new("RGB", (resolution, resolution))
    canvas.paste(face.resize((width, height), Image.Resampling.BICUBIC),
                 (rng.randint(0, resolution - width), rng.randint(0, resolution - height)))
    return canvas


def build_view_bank(face: FaceInput, encoder: FaceEncoder, vae: torch.nn.Module, resolution: int, count: int,
                    seed: int, chunk: int = 8) -> ViewBank:
    """`count` augmented views of one face: the first is the plain face at full size."""
    rng = random.Random(seed)
    crops, canvases = [], []
    for index in range(count):
        if index == 0:
            flip, factors = False, (1.0, 1.0, 1.0, 0.0)
            canvas_face = face.aligned.resize((resolution, resolution), Image.Resampling.BICUBIC)
        else:
            flip = rng.random() < 0.5
            factors = (rng.uniform(*JITTER), rng.uniform(*JITTER), rng.uniform(*JITTER),
                       rng.uniform(-HUE_SHIFT, HUE_SHIFT))
            canvas_face = None
        crops.append(jitter(face.recognizer_crop, flip, factors))
        jittered = jitter(face.aligned, flip, factors)
        canvases.append(canvas_face if canvas_face is not None else paste_on_canvas(jittered, resolution, rng))
    features = torch.from_numpy(np.asarray(encoder.encode(crops), dtype=np.float32))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    latents = []
    # Read once: `vae.to(...)` below changes the parameters in place, so a parameter object read later
    # would report the upcast dtype (and the VAE would be left in fp32).
    device, dtype = vae.device, vae.dtype
    # SDXL's VAE overflows in fp16 and says so with `force_upcast`; its pipeline encodes in fp32 too.
    upcast = dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(torch.float32)
    try:
        with torch.no_grad():
            for start in range(0, count, chunk):
                pixels = torch.stack([_to_tensor(image) for image in canvases[start : start + chunk]])
                posterior = vae.encode(pixels.to(device, vae.dtype)).latent_dist
                noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
                sample = posterior.mean.float() + posterior.std.float() * noise.float()
                shift = getattr(vae.config, "shift_factor", None) or 0.0
                latents.append((sample - shift) * vae.config.scaling_factor)
    finally:
        if upcast:
            vae.to(dtype)
    # Latents stay in fp32 whatever the model's dtype: the noise, the noisy input and the target are made
    # in fp32 and only the UNet's input is cast to its dtype (the loss is taken in fp32).
    return ViewBank(features=features.to(device), latents=torch.cat(latents))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL RGB image as a (3, h, w) tensor in [-1, 1], the VAE's input range."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)
