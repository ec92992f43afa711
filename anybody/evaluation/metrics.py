"""The evaluation's metrics, each a small function on plain numbers (numpy only, no model).

The definitions follow the papers' tables (docs/method.md §2 and §6):

- ID similarity: cosine between the reference photo's face descriptor and a generated face's; an image in
  which no face was found scores 0 (and counts against the detection rate, reported beside it).
- CLIP-T: cosine between a CLIP model's text and image embeddings (computed in `scoring.py`).
- ID(Prompt): the ID similarity, set to 0 for an image whose CLIP-T is under a threshold (SeFi-IDE: 0.23),
  so a method cannot score identity by ignoring the prompt.
- Face diversity: the mean pairwise descriptor distance between the faces drawn for one identity
  (PhotoMaker's question: does the method draw the same face every time?).
- Intervals: 95 % percentile bootstrap over images (resampled with replacement, a fixed seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anybody.evaluation.settings import CLIP_THRESHOLD

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The cosine of two vectors (0 when either is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norms) if norms > 0 else 0.0


def id_similarity(reference: np.ndarray, generated: np.ndarray | None) -> float:
    """Cosine between the reference face's descriptor and a generated face's; 0 when no face was found."""
    return 0.0 if generated is None else cosine(reference, generated)


def best_match(reference: np.ndarray, faces: Sequence[np.ndarray]) -> float:
    """The ID similarity of an image for one person: its best-matching face (0 for an image with none).
    In a two-person picture each person is scored by the face most like them."""
    return max((id_similarity(reference, face) for face in faces), default=0.0)


def detection_rate(found: Sequence[bool]) -> float:
    """The share of images in which the expected faces were found."""
    return float(np.mean(np.asarray(found, dtype=np.float64))) if len(found) else float("nan")


def id_prompt(id_scores: Sequence[float], clip_scores: Sequence[float], threshold: float = CLIP_THRESHOLD
              ) -> np.ndarray:
    """ID(Prompt): each image's ID similarity, or 0 where its CLIP-T is under `threshold`."""
    ids, clips = np.asarray(id_scores, dtype=np.float64), np.asarray(clip_scores, dtype=np.float64)
    if ids.shape != clips.shape:
        raise ValueError(f"one CLIP-T per ID score is needed (got {ids.shape} and {clips.shape})")
    return np.where(clips >= threshold, ids, 0.0)


def face_diversity(descriptors: Sequence[np.ndarray]) -> float | None:
    """Mean Euclidean distance over all pairs of faces drawn for one identity; None with fewer than two."""
    faces = np.asarray([np.asarray(d, dtype=np.float64).ravel() for d in descriptors])
    if len(faces) < 2:
        return None
    distances = np.linalg.norm(faces[:, None, :] - faces[None, :, :], axis=-1)
    upper = np.triu_indices(len(faces), k=1)
    return float(distances[upper].mean())


@dataclass(frozen=True)
class Estimate:
    """A mean over n values with its percentile-bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Estimate | None:
    """The mean and its percentile-bootstrap interval (resampling the values with replacement); None when
    there are no values. One value gives a zero-width interval: it says n = 1, not certainty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    means = np.random.default_rng(seed).choice(data, size=(resamples, data.size), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(data.mean()), float(low), float(high), int(data.size))
