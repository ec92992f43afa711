"""The pictures and numbers a drawing starts from, read and checked without a model: what is accepted, what
is changed to fit (and said), what is refused with its fix, and how each file is recorded."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from anybody.errors import ModelError, PhotoError, UsageError
from anybody.generation import defaults
from anybody.generation.inputs import canny_edges, read_inputs


@pytest.fixture
def scene(tmp_path):
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    picture.save(tmp_path / "scene.png")
    return tmp_path / "scene.png"


def _mask(size, box=(10, 10, 40, 30)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def test_the_task_and_its_default_strength_follow_from_what_is_given(scene):
    assert read_inputs().task == "text2img" and read_inputs().record() == {}
    img2img = read_inputs(image=scene)
    assert img2img.task == "img2img" and img2img.strength == defaults.IMG2IMG_STRENGTH
    inpaint = read_inputs(image=scene, mask=_mask((96, 64)))
    assert inpaint.task == "inpaint" and inpaint.strength == defaults.INPAINT_STRENGTH
    assert inpaint.mask.mode == "L" and inpaint.mask.size == (96, 64)


def test_files_are_recorded_by_name_and_hash_and_pictures_in_memory_by_their_pixels(scene):
    inputs = read_inputs(image=scene, mask=np.asarray(_mask((96, 64))), strength=0.4)
    record = inputs.record()
    assert record["image"] == {"file": "scene.png", "sha256": hashlib.sha256(scene.read_bytes()).hexdigest()}
    assert record["mask"]["file"] == "(in memory)"
    assert record["mask"]["sha256"] == hashlib.sha256(_mask((96, 64)).convert("RGB").tobytes()).hexdigest()
    assert record["strength"] == 0.4 and "controlnet" not in record


def test_a_mask_of_the_pictures_shape_at_another_size_is_resized_and_said(scene):
    inputs = read_inputs(image=scene, mask=_mask((48, 32), (5, 5, 20, 15)))
    assert inputs.mask.size == (96, 64)
    assert inputs.notes == ["The mask (in memory) is 48 x 32 px and the picture 96 x 64 px: the mask is resized to "
                            "the picture"]
    assert np.asarray(inputs.mask)[:8].max() == 0  # what was black stays black: nothing rings into the kept part


@pytest.mark.parametrize(("mask", "message"), [
    (Image.new("L", (64, 64), 255), r"64 x 64 px, another shape than the picture \(96 x 64 px\)"),
    (Image.new("L", (96, 64), 0), "all black: it asks to redraw nothing"),
    (Image.new("L", (96, 64), 255), "all white: it asks to redraw everything"),
])
def test_masks_that_cannot_mean_what_they_say_are_refused(scene, mask, message):
    with pytest.raises(UsageError, match=message):
        read_inputs(image=scene, mask=mask)


@pytest.mark.parametrize("strength", [0.0, -0.5, 1.01, float("nan")])
def test_a_strength_outside_0_to_1_is_refused(scene, strength):
    with pytest.raises(UsageError, match="more than 0 and at most 1"):
        read_inputs(image=scene, strength=strength)


def test_a_strength_is_accepted_only_where_it_leaves_a_step(scene):
    assert read_inputs(image=scene, strength=1.0).strength == 1.0
    with pytest.raises(UsageError, match=r"Pass --steps 4 or more"):
        read_inputs(image=scene, strength=0.25, steps=3)


def test_inputs_that_need_another_are_refused_with_it_named(scene):
    with pytest.raises(UsageError, match="Pass --image with the photo the mask was painted on"):
        read_inputs(mask=_mask((96, 64)))
    with pytest.raises(UsageError, match="no picture was given"):
        read_inputs(strength=0.5)
    with pytest.raises(UsageError, match="needs a ControlNet"):
        read_inputs(control_image=scene)
    with pytest.raises(UsageError, match="without a control image"):
        read_inputs(controlnet="tiny")
    with pytest.raises(UsageError, match="Unknown control kind 'depth'"):
        read_inputs(control_image=scene, controlnet="tiny", control_kind="depth")
    with pytest.raises(UsageError, match="control scale must be a finite number"):
        read_inputs(control_image=scene, controlnet="tiny", control_scale=float("inf"))
    with pytest.raises(ModelError, match=r"ControlNet \./missing does not exist"):
        read_inputs(control_image=scene, controlnet="./missing")


def test_unreadable_files_are_named_for_what_they_were_meant_to_be(scene, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(PhotoError, match=r"The mask .*notes\.png is not an image"):
        read_inputs(image=scene, mask=tmp_path / "notes.png")
    with pytest.raises(PhotoError, match=r"The control image .*notes\.png is not an image"):
        read_inputs(control_image=tmp_path / "notes.png", controlnet="tiny")
    with pytest.raises(PhotoError, match=r"The picture .*gone\.png does not exist"):
        read_inputs(image=tmp_path / "gone.png")


def test_canny_makes_white_edges_on_black_where_the_photo_has_edges():
    photo = Image.new("RGB", (64, 64), "black")
    photo.paste((255, 255, 255), (16, 16, 48, 48))
    edges = np.asarray(canny_edges(photo))
    assert edges.shape == (64, 64, 3) and set(np.unique(edges)) == {0, 255}
    assert edges[16, 30].max() == 255 or edges[15, 30].max() == 255  # the square's top edge
    assert edges[32, 32].max() == 0 and edges[2, 2].max() == 0  # flat inside and outside


def test_a_control_image_is_fitted_to_the_picture_it_steers(scene):
    inputs = read_inputs(image=scene, mask=_mask((96, 64)), control_image=Image.new("RGB", (48, 48)),
                         controlnet="tiny")
    assert inputs.control_image.size == (96, 64)
    assert "the control image is resized to the picture" in inputs.notes[0]


def test_a_jpeg_masks_noise_near_black_and_white_counts_as_black_and_white(scene, tmp_path):
    mask = _mask((96, 64))
    mask.save(tmp_path / "mask.jpg", quality=70)
    assert np.asarray(Image.open(tmp_path / "mask.jpg").convert("L"))[50:, 60:].max() > 0  # JPEG's noise is there
    cleaned = np.asarray(read_inputs(image=scene, mask=tmp_path / "mask.jpg").mask)
    assert cleaned[50:, 60:].max() == 0 and cleaned[15:25, 15:35].min() == 255
