"""One photo to everything learning needs from it: the chosen face, its aligned image and its features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from anybody.face.alignment import TEMPLATE_SIZE, align_face
from anybody.face.detection import Face, choose_face, find_faces
from anybody.face.encoders import FaceEncoder, get_face_encoder
from anybody.face.photo import PhotoSource, load_photo


@dataclass(eq=False)
class FaceInput:
    """A photo prepared for learning.

    `photo` the upright RGB photo; `faces` every face found, largest first; `index` and `face` the one
    chosen; `aligned` that face in the template framing (size x size, the diffusion target);
    `recognizer_crop` the encoder's own crop of it; `descriptor` (dim,) its raw features.
    """

    photo: Image.Image
    faces: list[Face]
    index: int
    face: Face
    aligned: Image.Image
    recognizer_crop: Image.Image
    descriptor: np.ndarray


def prepare_face(photo: PhotoSource, face_index: int | None = None, detector: str = "hog",
                 encoder: FaceEncoder | None = None, size: int = TEMPLATE_SIZE) -> FaceInput:
    """Load the photo, find and choose the face, align it and compute its features.

    Raises `PhotoError` for an unreadable photo, no face, an index out of range or a face too small.
    """
    image = load_photo(photo)
    faces = find_faces(image, detector=detector)
    face = choose_face(faces, face_index)
    encoder = encoder or get_face_encoder("dlib")
    crop = encoder.crop(image, face)
    return FaceInput(
        photo=image,
        faces=faces,
        index=faces.index(face),
        face=face,
        aligned=align_face(image, face, size),
        recognizer_crop=crop,
        descriptor=np.asarray(encoder.encode([crop])[0], dtype=np.float32),
    )
