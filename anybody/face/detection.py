"""Find the faces in a photo, with dlib's five landmarks each, and pick the one to learn.

Detection runs on a resized copy of the photo, for speed and reach: both dlib detectors see faces of
about `DETECTOR_WINDOW` pixels and more, so the copy is scaled to make a face of `SMALLEST_SEARCHED`
photo pixels that big (a face too small to learn from is then reported as too small, not as missing),
within a per-detector size budget (a big photo is scaled down instead). Boxes are mapped back to photo
pixels and the landmarks are predicted on the full-resolution photo, so nothing is lost by resizing.

"hog" (the default) proposes faces with dlib's fast HOG detector and confirms each proposal with the MMOD
CNN on a small crop around it. HOG alone fires on face-like patterns: on the bundled astronaut photo it
scores her mission patch at 0.16 and, once the photo is rotated by 10 degrees, her name tag at 1.38,
above the real face. The check costs about 0.2 s per proposal on 2 CPU cores.
"cnn" runs the MMOD CNN over the whole (smaller) copy: slower, but finds turned and dimly lit faces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from anybody.errors import PhotoError, UsageError
from anybody.face.models import cnn_detector, dlib_module, hog_detector, landmark_predictor
from anybody.face.photo import PhotoSource, load_photo

log = logging.getLogger(__name__)

MIN_FACE_SIZE = 64
"""Smallest usable face, in photo pixels (box side). Below it the recognizer and the 512 px diffusion
target would be built from upscaled blur; the user is asked for a closer or larger photo."""

SMALLEST_SEARCHED = 40
"""Faces down to this side (photo pixels) are searched, so a too-small face is named as such."""

DETECTOR_WINDOW = 80
"""Both dlib detectors find faces of about 80 px and larger in the image they are given."""

DETECTORS = {"hog": 2560, "cnn": 800}
"""Each detector and the longest side its working copy may have (the CNN costs 4x the HOG per pixel and
more: 2.9 s on a 512 x 512 image on 2 cores). A panorama may be longer, within the pixels of a 4:3 photo
of that side: the cost follows the pixel count, and a 12:1 strip scaled by its length would shrink its
faces below what the detectors see."""

_VERIFY_CONTEXT = 1.6  # the confirming crop spans this many face boxes
_VERIFY_SIZE = 160  # ... and is resized to this side, so the face is about 100 px for the CNN
_OVERLAP = 0.5  # boxes overlapping more than this (intersection over union) are one face


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in photo pixels.

    `box` is (left, top, right, bottom) with right and bottom exclusive (like PIL's crop box); it may
    reach past the photo's edges for a face cut by the border. `landmarks` is dlib's 5-point shape
    (5, 2) as (x, y): 0 and 1 the outer and inner corner of the eye on the image's right, 2 and 3 the
    outer and inner corner of the eye on the image's left, 4 the base of the nose. `score` is the
    detector's confidence (HOG score or MMOD confidence).
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float = 0.0

    @property
    def size(self) -> int:
        """The side of the (square) face box, in photo pixels."""
        left, top, right, bottom = self.box
        return max(right - left, bottom - top)

    @property
    def eye_centres(self) -> np.ndarray:
        """(2, 2): the centre of the eye on the image's left, then of the one on its right."""
        return np.stack([self.landmarks[2:4].mean(axis=0), self.landmarks[0:2].mean(axis=0)])

    @property
    def nose(self) -> np.ndarray:
        """(2,): the base of the nose."""
        return self.landmarks[4]


def find_faces(image: PhotoSource, detector: str = "hog") -> list[Face]:
    """Every face in the photo, largest first, each with its 5 landmarks at full resolution.

    A PIL RGB image is taken as it is (upright, as `load_photo` returns it); anything else goes through
    `load_photo` first. An empty list when there is no face; `choose_face` turns that into the error.
    """
    if detector not in DETECTORS:
        raise UsageError(f"Unknown face detector {detector!r}",
                         "Use 'hog' (fast, the default) or 'cnn' (slower, finds turned and dim faces)")
    photo = image if isinstance(image, Image.Image) and image.mode == "RGB" else load_photo(image)
    scale = detection_scale(photo.size, detector)
    working = photo if scale == 1.0 else photo.resize(
        (max(1, round(photo.width * scale)), max(1, round(photo.height * scale))), Image.Resampling.BILINEAR)
    if min(working.size) < DETECTOR_WINDOW:  # no face fits (and dlib's CNN refuses such small inputs)
        return []
    pixels = np.asarray(working)
    if detector == "hog":
        found = _confirmed(photo, [(_to_photo(box, scale), score) for box, score in _hog(pixels)])
    else:
        found = [(_to_photo(box, scale), score) for box, score in _cnn(pixels)]
    full = np.asarray(photo)
    faces = [Face(box=box, landmarks=_landmarks(full, box), score=score) for box, score in _distinct(found)]
    return sorted(faces, key=lambda face: (-face.size, -face.score))


def choose_face(faces: list[Face], index: int | None = None) -> Face:
    """The face to learn: number `index` (0 = the largest) or, when not given, the largest.

    Several faces and no index: the largest is taken and a warning says how to pick another.
    """
    if not faces:
        raise PhotoError("No face was found in the photo",
                         f"Use a photo where one face is clearly visible, roughly frontal and at least "
                         f"{MIN_FACE_SIZE} pixels wide")
    if index is None:
        index = 0
        if len(faces) > 1:
            log.warning("The photo has %d faces; the largest (%d px) is used. Pass --face N (face_index=N) "
                        "to pick another: 0 is the largest, %d the smallest", len(faces), faces[0].size,
                        len(faces) - 1)
    elif not 0 <= index < len(faces):
        if len(faces) == 1:
            raise PhotoError(f"There is no face {index}: the photo has 1 face (valid: 0)",
                             "Leave out --face, or pass --face 0")
        raise PhotoError(f"There is no face {index}: the photo has {len(faces)} faces "
                         f"(valid: 0 to {len(faces) - 1})",
                         f"Pass --face with a number from 0 to {len(faces) - 1} (0 is the largest)")
    face = faces[index]
    if face.size < MIN_FACE_SIZE:
        raise PhotoError(f"The face is only {face.size} pixels wide, smaller than the "
                         f"{MIN_FACE_SIZE}-pixel minimum", "Use a closer or larger photo of the face")
    return face


def detection_scale(size: tuple[int, int], detector: str) -> float:
    """The factor the photo is resized by for `detector`: faces of SMALLEST_SEARCHED px become findable,
    unless that would pass the detector's size budget (then big photos are scaled down to it)."""
    side = DETECTORS[detector]
    by_side = side / max(size)
    by_pixels = (side * side * 3 / 4 / max(1, size[0] * size[1])) ** 0.5  # wider than 4:3: the same pixels
    return min(DETECTOR_WINDOW / SMALLEST_SEARCHED, max(by_side, by_pixels))


Box = tuple[float, float, float, float]
Scored = tuple[tuple[int, int, int, int], float]  # a box in photo pixels and its detector score


def _hog(pixels: np.ndarray) -> list[tuple[Box, float]]:
    rects, scores, _ = hog_detector().run(pixels, 0, 0.0)
    return [((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(score))
            for r, score in zip(rects, scores, strict=True)]


def _cnn(pixels: np.ndarray) -> list[tuple[Box, float]]:
    found = cnn_detector()(pixels, 0)
    return [((d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1), float(d.confidence))
            for d in found]


def _to_photo(box: Box, scale: float) -> tuple[int, int, int, int]:
    return tuple(round(value / scale) for value in box)  # type: ignore[return-value]


def _confirmed(photo: Image.Image, proposals: list[Scored]) -> list[Scored]:
    """The HOG proposals the CNN also sees as a face, each checked on a small crop around it."""
    if not proposals:
        return []
    crops = []
    for (left, top, right, bottom), _ in proposals:
        half = max(right - left, bottom - top) * _VERIFY_CONTEXT / 2
        x, y = (left + right) / 2, (top + bottom) / 2
        region = (round(x - half), round(y - half), round(x + half), round(y + half))
        crop = photo.crop(region).resize((_VERIFY_SIZE, _VERIFY_SIZE), Image.Resampling.BILINEAR)
        crops.append(np.asarray(crop))
    results = cnn_detector()(crops, 0, batch_size=len(crops))
    expected = _VERIFY_SIZE / _VERIFY_CONTEXT  # the proposal's side in the crop
    low, high = (_VERIFY_SIZE - expected) / 2, (_VERIFY_SIZE + expected) / 2
    kept = []
    for proposal, detections in zip(proposals, results, strict=True):
        for detection in detections:
            rect = detection.rect
            centre_x, centre_y = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
            if low <= centre_x <= high and low <= centre_y <= high and \
                    0.5 * expected <= rect.width() <= 2.0 * expected:
                kept.append(proposal)
                break
    return kept


def _distinct(found: list[Scored]) -> list[Scored]:
    """One box per face: of boxes that overlap a lot, the highest-scoring one stays."""
    kept: list[Scored] = []
    for box, score in sorted(found, key=lambda item: -item[1]):
        if all(_overlap(box, other) <= _OVERLAP for other, _ in kept):
            kept.append((box, score))
    return kept


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def _landmarks(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    shape = landmark_predictor()(pixels, dlib_module().rectangle(left, top, right - 1, bottom - 1))
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)


def shape_of(face: Face) -> Any:
    """The face as a dlib `full_object_detection` (for dlib functions such as `get_face_chip`)."""
    dlib = dlib_module()
    left, top, right, bottom = face.box
    points = dlib.points([dlib.point(round(x), round(y)) for x, y in face.landmarks])
    return dlib.full_object_detection(dlib.rectangle(left, top, right - 1, bottom - 1), points)
