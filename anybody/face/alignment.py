"""The aligned face: the photo turned and scaled so the face sits exactly where the template says.

This is the diffusion target of learning (docs/method.md §1; the reference aligns to the FFHQ 5-point
template at 512 px). Every identity is then learned from the same framing: the whole face with some
hair and the chin, eyes level at 47 % of the height, as in FFHQ, on which face models are trained.

The template (`TEMPLATE`, for 512 x 512) is dlib's own mean face for its five landmarks (the shape
`dlib.get_face_chip` aligns to) placed so that its eye centres land on the FFHQ template's eyes,
(192.98, 239.95) and (318.90, 240.19). Placed so, its mean mouth corners fall at y = 373.7, within
3 px of FFHQ's 371.4: the two templates agree, and dlib's points need no mouth corners.

    point                          x        y
    0 eye on the image's right,   344.48   238.23   outer corner
    1   same eye,                 293.32   241.91   inner corner
    2 eye on the image's left,    167.40   238.23   outer corner
    3   same eye,                 218.56   241.91   inner corner
    4 base of the nose            255.94   337.18

The eye centres are therefore (192.98, 240.07) and (318.90, 240.07). The similarity transform is fitted
to all five points by least squares. Other output sizes scale the template.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from anybody.face.detection import Face
from anybody.face.geometry import Matrix, fit_similarity, warp

TEMPLATE_SIZE = 512

# dlib's mean face shape (from dlib's get_face_chip_details), for the 68-point indices 45, 42, 36, 39, 33
# that its 5-point predictor returns in this order, in a unit box.
_DLIB_MEAN_FACE = np.array([[0.858516, 0.216423], [0.645647, 0.231733], [0.121737, 0.216423],
                            [0.334606, 0.231733], [0.490127, 0.628106]])
# FFHQ's 5-point template at 512 px: eye on the image's left, on its right, nose tip, mouth corners.
FFHQ_TEMPLATE = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                          [201.26117, 371.41043], [313.08905, 371.15118]])


def _dlib_template_on_ffhq() -> np.ndarray:
    """dlib's mean face, scaled and moved so that its eye centres fall on FFHQ's eye centres."""
    eyes = np.stack([_DLIB_MEAN_FACE[2:4].mean(axis=0), _DLIB_MEAN_FACE[0:2].mean(axis=0)])
    target = np.array([[FFHQ_TEMPLATE[0, 0], FFHQ_TEMPLATE[:2, 1].mean()],
                       [FFHQ_TEMPLATE[1, 0], FFHQ_TEMPLATE[:2, 1].mean()]])
    scale = (target[1, 0] - target[0, 0]) / (eyes[1, 0] - eyes[0, 0])
    return (_DLIB_MEAN_FACE - eyes[0]) * scale + target[0]


TEMPLATE = _dlib_template_on_ffhq()
"""(5, 2): where dlib's five landmarks go in the 512 x 512 aligned face (see the module's table)."""


def template(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The template for a `size` x `size` output (pixel indices, so the scaling keeps the centre)."""
    return (TEMPLATE + 0.5) * (size / TEMPLATE_SIZE) - 0.5


def alignment_matrix(face: Face, size: int = TEMPLATE_SIZE) -> Matrix:
    """(2, 3): photo pixels to aligned-face pixels, fitted on the five landmarks."""
    return fit_similarity(face.landmarks, template(size))


def align_face(image: Image.Image, face: Face, size: int = TEMPLATE_SIZE) -> Image.Image:
    """The face as a `size` x `size` RGB image in the template's framing.

    A face near the photo's border keeps its place: the missing part of the frame is filled by mirroring
    the photo, blurred and faded with the distance to the edge, never by cropping or shifting the face.
    """
    return warp(image.convert("RGB"), alignment_matrix(face, size), (size, size))
