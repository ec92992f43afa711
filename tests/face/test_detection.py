"""`find_faces` / `choose_face` on the real photo with the real dlib models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anybody.errors import PhotoError, UsageError
from anybody.face import MIN_FACE_SIZE, choose_face, find_faces, prepare_face

from .conftest import centre


def test_the_sample_has_one_face_of_plausible_size(sample_faces, photo):
    assert len(sample_faces) == 1  # HOG alone also "finds" the mission patch; the CNN check drops it
    face = sample_faces[0]
    left, top, right, bottom = face.box
    assert 70 <= face.size <= 130 and 0 <= left < right <= photo.width and 0 <= top < bottom <= photo.height
    assert 150 < centre(face)[0] < 290 and 60 < centre(face)[1] < 190  # her face, top centre
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float64
    assert ((face.landmarks[:, 0] >= left) & (face.landmarks[:, 0] <= right)).all()
    assert ((face.landmarks[:, 1] >= top) & (face.landmarks[:, 1] <= bottom)).all()
    eye_left, eye_right = face.eye_centres
    assert eye_left[0] < face.nose[0] < eye_right[0] and face.nose[1] > max(eye_left[1], eye_right[1])


def test_a_rotated_photo_does_not_find_its_name_tag(photo):
    faces = find_faces(photo.rotate(10))  # HOG scores the name tag 1.38 here, above the face
    assert len(faces) == 1 and faces[0].size > MIN_FACE_SIZE


@pytest.mark.slow
def test_the_cnn_detector_finds_the_face_too(photo, sample_faces):
    small = photo.resize((256, 256))  # the CNN is slow on CPU: a small photo keeps the test quick
    faces = find_faces(small, detector="cnn")
    assert len(faces) == 1
    assert np.abs(centre(faces[0]) * 2 - centre(sample_faces[0])).max() < 16


def test_an_unknown_detector_is_a_usage_error(photo):
    with pytest.raises(UsageError, match=r"Unknown face detector 'yolo'"):
        find_faces(photo, detector="yolo")


@pytest.fixture(scope="module")
def two_faces(photo: Image.Image) -> Image.Image:
    """The photo beside a 0.8x copy of itself: two faces, about 90 and 72 px."""
    smaller = photo.resize((410, 410), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (512 + 410, 512), (200, 200, 200))
    canvas.paste(photo, (0, 0))
    canvas.paste(smaller, (512, 60))
    return canvas


def test_several_faces_take_the_largest_and_warn(two_faces, face_log):
    prepared = prepare_face(two_faces)
    assert len(prepared.faces) == 2 and prepared.index == 0
    assert prepared.faces[0].size > prepared.faces[1].size >= MIN_FACE_SIZE
    assert centre(prepared.face)[0] < 512
    assert "has 2 faces" in face_log.text and "--face N" in face_log.text and "0 is the largest" in face_log.text


def test_face_index_picks_another_face(two_faces, face_log):
    prepared = prepare_face(two_faces, face_index=1)
    assert prepared.index == 1 and centre(prepared.face)[0] > 512
    assert "has 2 faces" not in face_log.text


def test_no_face_in_a_plain_image():
    gradient = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))
    with pytest.raises(PhotoError, match=r"No face was found"):
        prepare_face(gradient)


def test_a_face_too_small(photo):
    small = photo.resize((300, 300), Image.Resampling.LANCZOS)  # the face becomes about 53 px
    faces = find_faces(small)
    assert len(faces) == 1 and faces[0].size < MIN_FACE_SIZE
    with pytest.raises(PhotoError, match=r"only \d+ pixels wide.*closer or larger photo"):
        choose_face(faces)


@pytest.mark.parametrize("index", [1, 7, -1])
def test_a_face_index_out_of_range(sample_faces, index):
    with pytest.raises(PhotoError, match=rf"no face {index}: the photo has 1 face \(valid: 0\)"):
        choose_face(sample_faces, index)


def test_a_face_index_out_of_range_lists_the_range(sample_faces):
    with pytest.raises(PhotoError, match=r"valid: 0 to 2"):
        choose_face(sample_faces * 3, 3)


def test_a_face_replaced_by_noise_is_not_found(photo, sample_faces):
    left, top, right, bottom = sample_faces[0].box
    pixels = np.asarray(photo).copy()
    region = (slice(max(0, top - 30), bottom + 30), slice(max(0, left - 30), right + 30))
    pixels[region] = np.random.default_rng(0).integers(0, 256, pixels[region].shape, dtype=np.uint8)
    assert find_faces(pixels) == []
