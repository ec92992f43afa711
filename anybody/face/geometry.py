"""Similarity transforms fitted to landmarks, and warps that pad instead of cropping.

A face is aligned by a similarity transform (rotation, one scale, translation): it keeps the face's
proportions, which identity depends on, and only normalises where the face sits in the frame. It is
fitted by least squares (Umeyama 1991) so every landmark counts and no single point is trusted exactly.

Coordinates are pixel indices (pixel centres at integers), like dlib's landmarks and the templates.
Where the warp needs pixels beyond the photo's edge, the photo is mirrored there, blurred more and more
with the distance to the edge and faded towards the photo's median colour (the FFHQ recipe): the face
keeps its place in the frame and no hard black border teaches the diffusion model a false edge.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

# The padding beyond the photo's edge, as fractions of the output's extent: blur radius, the distance
# over which the mirror image turns fully blurred, and the distance at which it reaches the median colour.
_BLUR = 0.04
_BLUR_RAMP = 0.03
_FADE_RAMP = 0.3

Matrix = np.ndarray
"""A (2, 3) affine matrix: [x', y'] = M @ [x, y, 1]."""


def fit_similarity(source: np.ndarray, target: np.ndarray) -> Matrix:
    """The similarity transform taking `source` points (n, 2) closest to `target` (n, 2), least squares."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    variance = (source_centred**2).sum() / len(source)
    if variance <= 1e-12:
        raise ValueError("The landmarks all lie on one point; no transform can be fitted")
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    reflection = np.diag([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ reflection @ vt
    scale = float(np.trace(np.diag(singular) @ reflection)) / variance
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def apply(matrix: Matrix, points: np.ndarray) -> np.ndarray:
    """`points` (n, 2) mapped by `matrix` (2, 3)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: Matrix) -> Matrix:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def scale_of(matrix: Matrix) -> float:
    """How many output pixels one input pixel becomes (the similarity's uniform scale)."""
    return math.sqrt(abs(np.linalg.det(matrix[:, :2])))


def warp(image: Image.Image, matrix: Matrix, size: tuple[int, int]) -> Image.Image:
    """`image` (RGB) mapped by `matrix` (image pixels to output pixels) into an image of `size`.

    Only the part of the photo the output needs is touched; a strong reduction first shrinks that
    part by an integer factor (box filter), so the final bicubic resampling never aliases.
    """
    width, height = size
    inverse = invert(matrix)
    corners = apply(inverse, np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5],
                                       [width - 0.5, height - 0.5]]))
    scale = scale_of(matrix)
    reduction = max(1, math.floor(1.0 / (2.0 * scale)))
    margin = 4 * reduction + 2  # room for the bicubic kernel at the edges
    left = math.floor((corners[:, 0].min() - margin) / reduction) * reduction
    top = math.floor((corners[:, 1].min() - margin) / reduction) * reduction
    right = math.ceil((corners[:, 0].max() + margin) / reduction) * reduction
    bottom = math.ceil((corners[:, 1].max() + margin) / reduction) * reduction
    field = max(width, height) / scale / reduction  # the output's extent in working pixels
    region = _padded_region(image, (left, top, right, bottom), reduction, field)
    # output index -> photo index -> working index (reduced, offset); PIL samples at pixel centres (+0.5).
    to_working = np.array([[1.0 / reduction, 0.0, (0.5 / reduction - 0.5) - left / reduction],
                           [0.0, 1.0 / reduction, (0.5 / reduction - 0.5) - top / reduction],
                           [0.0, 0.0, 1.0]])
    shift_in = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    shift_out = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    full = shift_in @ to_working @ np.vstack([inverse, [0.0, 0.0, 1.0]]) @ shift_out
    coefficients = tuple(float(value) for value in full[:2].reshape(-1))
    return region.transform(size, Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BICUBIC)


def _padded_region(image: Image.Image, box: tuple[int, int, int, int], reduction: int, field: float
                   ) -> Image.Image:
    """The photo's pixels in `box` (photo pixels, reduced by `reduction`), mirrored and blurred outside."""
    left, top, right, bottom = box
    inner_left, inner_top = min(max(left, 0), image.width - 1), min(max(top, 0), image.height - 1)
    inner_right = max(min(right, image.width), inner_left + 1)
    inner_bottom = max(min(bottom, image.height), inner_top + 1)
    inner = image.crop((inner_left, inner_top, inner_right, inner_bottom))
    if reduction > 1:
        inner = inner.reduce(reduction)
    out_width, out_height = (right - left) // reduction, (bottom - top) // reduction
    pad_left = (inner_left - left) // reduction
    pad_top = (inner_top - top) // reduction
    pad_right = out_width - pad_left - inner.width
    pad_bottom = out_height - pad_top - inner.height
    if min(pad_left, pad_top, pad_right, pad_bottom) < 0:  # only when the box is wholly outside the photo
        pad_right, pad_bottom = max(pad_right, 0), max(pad_bottom, 0)
        pad_left, pad_top = max(pad_left, 0), max(pad_top, 0)
    if not (pad_left or pad_top or pad_right or pad_bottom):
        return inner
    pixels = np.asarray(inner, dtype=np.float32)
    mode = "reflect" if inner.width > 1 and inner.height > 1 else "edge"
    padded = np.pad(pixels, ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)), mode=mode)
    rows = np.arange(padded.shape[0], dtype=np.float32)[:, None]
    columns = np.arange(padded.shape[1], dtype=np.float32)[None, :]
    beyond_x = np.maximum(np.maximum(pad_left - columns, columns - (pad_left + inner.width - 1)), 0.0)
    beyond_y = np.maximum(np.maximum(pad_top - rows, rows - (pad_top + inner.height - 1)), 0.0)
    distance = np.sqrt(beyond_x**2 + beyond_y**2)[:, :, None]
    blurred = np.asarray(Image.fromarray(np.round(padded).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(max(1.0, _BLUR * field))), dtype=np.float32)
    mixed = padded + (blurred - padded) * np.clip(distance / max(1.0, _BLUR_RAMP * field), 0.0, 1.0)
    median = np.median(pixels.reshape(-1, pixels.shape[2]), axis=0)
    mixed = mixed + (median - mixed) * np.clip(distance / max(1.0, _FADE_RAMP * field), 0.0, 1.0)
    region = Image.fromarray(np.clip(np.round(mixed), 0, 255).astype(np.uint8), "RGB")
    return region.crop((0, 0, out_width, out_height)) if region.size != (out_width, out_height) else region
