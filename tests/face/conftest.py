"""Shared fixtures for the face tests: the real sample photo, its faces and its prepared face, built once.

The faces are found with the real dlib models (no mocks): every test here exercises what users run.
"""

from __future__ import annotations

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
def face_log(anybody_log: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The warnings logged (tests/conftest.py `anybody_log`)."""
    return anybody_log


def centre(face: Face) -> np.ndarray:
    left, top, right, bottom = face.box
    return np.array([(left + right) / 2, (top + bottom) / 2])
