"""Shared fixtures for the face tests: the real sample photo, its faces and its prepared face, built once.

The faces are found with the real dlib models (no mocks): every test here exercises what users run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anybody.face import Face, FaceInput, find_faces, load_photo, prepare_face

SAMPLE = Path(__file__).resolve().parents[2] / "anybody" / "data" / "sample_face.jpg"


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    return load_photo(SAMPLE)


@pytest.fixture(scope="session")
def sample_faces(photo: Image.Image) -> list[Face]:
    return find_faces(photo)


@pytest.fixture(scope="session")
def sample_input(photo: Image.Image) -> FaceInput:
    return prepare_face(photo)


@pytest.fixture
def face_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, attached to the "anybody" logger itself: the CLI turns that logger's propagation off."""
    logger = logging.getLogger("anybody")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="anybody")
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def centre(face: Face) -> np.ndarray:
    left, top, right, bottom = face.box
    return np.array([(left + right) / 2, (top + bottom) / 2])
