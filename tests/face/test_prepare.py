"""`prepare_face` and `write_face_preview`: what learning gets, and what the user is shown."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anybody.errors import PhotoError
from anybody.face import FaceInput, write_face_preview

from .conftest import SAMPLE


def test_prepare_face_gives_everything_learning_needs(sample_input, photo):
    assert isinstance(sample_input, FaceInput)
    assert sample_input.photo.size == photo.size and sample_input.index == 0
    assert sample_input.face is sample_input.faces[0]
    assert sample_input.aligned.size == (512, 512) and sample_input.aligned.mode == "RGB"
    assert sample_input.recognizer_crop.mode == "RGB" and sample_input.descriptor.shape == (128,)


def test_the_preview_files_are_valid_pngs(tmp_path):
    paths = write_face_preview(SAMPLE, tmp_path / "preview")
    assert [path.name for path in paths] == ["sample_face-faces.png", "sample_face-aligned.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            image.verify()
    with Image.open(paths[0]) as annotated:
        assert annotated.size == (512, 512)
        changed = np.abs(np.asarray(annotated.convert("RGB"), int) - np.asarray(Image.open(SAMPLE), int))
        assert changed.sum(axis=2).max() > 200  # boxes and landmarks were drawn
    with Image.open(paths[1]) as pair:
        assert pair.size == (1024, 512)
    assert not [path for path in (tmp_path / "preview").iterdir() if path.name.startswith(".")]  # no temp files


def test_the_preview_of_a_wrong_index_still_numbers_the_faces(tmp_path, photo):
    with pytest.raises(PhotoError, match=r"no face 4.*numbered faces are in .*astro-faces\.png"):
        write_face_preview(photo, tmp_path, face_index=4, stem="astro")
    assert (tmp_path / "astro-faces.png").is_file() and not (tmp_path / "astro-aligned.png").exists()
