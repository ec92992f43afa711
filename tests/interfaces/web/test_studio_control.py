"""The studio draws into a scene photo (inpainting with a painted mask, img2img without), in a pose (a control
image through one of the ControlNets it offers, loaded once), each identity in its place, and swaps faces:
on the tiny model, through the same `generate` and `swap` as the command line. Pixels the mask leaves black,
and outside the swapped face's region, are the photo's own. (Refusals: test_studio_checks.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anybody.face import find_faces
from anybody.generation.swap import face_region
from tests.models.hf_cache import add_repo
from tests.robustness import bad_files

QUICK = {"negative_prompt": "", "seed": 7, "steps": 2, "guidance": 7.5, "width": None, "height": None, "count": 1}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 96 x 64 scene, a mask painted on its middle, and a control image of another size."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / "room.png")
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (30, 16, 60, 48))
    mask.save(folder / "mask.png")
    Image.fromarray(rng.integers(0, 256, (48, 72, 3), dtype=np.uint8)).save(folder / "pose.png")
    return {"scene": folder / "room.png", "mask": folder / "mask.png", "control": folder / "pose.png"}


def _record(path: Path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text["anybody"])


@pytest.mark.slow
def test_a_painted_mask_redraws_only_itself_and_the_png_says_what_it_was_drawn_from(studio, scene, zoe):
    result = studio.draw("a photo of zoe", ["zoe"], **QUICK, scene=scene["scene"], mask=scene["mask"], strength=1.0)
    with Image.open(scene["scene"]) as before, Image.open(result.paths[0]) as after:
        assert after.size == before.size
        changed = np.abs(np.asarray(after.convert("RGB"), int) - np.asarray(before.convert("RGB"), int)).max(-1)
    mask = np.asarray(Image.open(scene["mask"]))
    assert not changed[mask == 0].any() and changed[mask == 255].mean() > 10
    record = _record(result.paths[0])
    assert record["image"]["file"] == "room.png" and record["mask"]["file"] == "mask.png"
    assert record["strength"] == 1.0


@pytest.mark.slow
def test_a_scene_without_a_mask_is_redrawn_by_strength(studio, scene, zoe):
    result = studio.draw("a photo of zoe", ["zoe"], **{**QUICK, "steps": 4}, scene=scene["scene"], strength=0.5)
    record = _record(result.paths[0])
    assert record["strength"] == 0.5 and "mask" not in record


@pytest.mark.slow
def test_a_control_image_steers_through_the_tiny_controlnet_loaded_once_and_each_identity_keeps_its_place(
        studio, scene, zoe):
    assert studio.controlnet_choices()[0] == "tiny"  # a built-in model: the built-in ControlNet
    first = studio.draw("a photo of zoe", ["zoe"], **QUICK, control=scene["control"], controlnet="tiny",
                        control_scale=0.5, places={"zoe": "left"})
    loaded = studio._controlnet[1]
    record = _record(first.paths[0])
    assert record["controlnet"] == "tiny" and record["control_scale"] == 0.5 and record["control"]["file"] == "pose.png"
    assert record["regions"] == {"zoe": "left"}
    second = studio.draw("a photo of zoe", ["zoe"], **QUICK, scene=scene["scene"], mask=scene["mask"],
                         control=scene["scene"], control_kind="canny", controlnet="tiny",
                         places={"zoe": "0.1,0,0.6,1"})
    assert studio._controlnet[1] is loaded  # kept between drawings
    record = _record(second.paths[0])
    assert record["control_kind"] == "canny" and record["regions"] == {"zoe": "0.1,0,0.6,1"}


def test_the_controlnets_offered_are_the_built_in_one_those_named_at_start_and_the_cached_ones_that_fit(
        studio, web_work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import constants

    from anybody.interfaces.web.studio import Studio
    from anybody.models.tiny import build_tiny_controlnet

    cache = tmp_path / "hub"
    build_tiny_controlnet(studio.pipe).save_pretrained(tmp_path / "fits")
    add_repo(cache, "someone/controlnet-tiny", tmp_path / "fits")
    bad_files.make_control_files(tmp_path)  # an SD 2.1 ControlNet's config: another family's, not offered
    config = tmp_path / "controlnet-sd21" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "_diffusers_version": "0.30.0"}))
    add_repo(cache, "someone/controlnet-sd21", tmp_path / "controlnet-sd21")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    named = str(tmp_path / "fits")
    offered = Studio("tiny", work=web_work, out=tmp_path / "out", pipe=studio.pipe, controlnets=[named])
    assert offered.controlnet_choices() == ["tiny", named, "someone/controlnet-tiny"]
    real = Studio("some/real-model", work=web_work, out=tmp_path / "out", pipe=studio.pipe)
    assert real.controlnet_choices() == ["someone/controlnet-tiny"]  # no random-weight ControlNet for a real model
    unloaded = Studio("tiny", work=web_work, out=tmp_path / "out")
    assert unloaded.controlnet_choices() == ["tiny", "someone/controlnet-sd21", "someone/controlnet-tiny"]
    assert unloaded._pipe is None  # checked without loading the model (the family is checked when drawing)


@pytest.mark.slow
def test_a_swapped_face_changes_only_its_region_is_scored_and_reports_each_step(studio, photos: Path, zoe):
    steps = []
    result = studio.swap(photos / "sample_face.jpg", "zoe", face="all", strength=0.75, steps=4, seed=3,
                         on_step=lambda face, faces, step, of: steps.append((face, faces, step, of)))
    assert steps == [(0, 1, 1, 3), (0, 1, 2, 3), (0, 1, 3, 3)]
    with Image.open(photos / "sample_face.jpg") as photo:
        before = photo.convert("RGB")
    assert result.image.size == before.size and result.path.is_file() and result.path.name == "sample_face-zoe.png"
    [face] = find_faces(before)
    region = np.asarray(face_region(face, before.size))
    changed = np.abs(np.asarray(result.image, int) - np.asarray(before, int)).max(-1)
    assert not changed[region == 0].any() and changed[region == 255].mean() > 10
    [done] = result.faces
    assert done.score is not None and done.score.recognizer == "dlib"
    with Image.open(result.path) as written:
        assert written.text["id_similarity"] == f"{done.score.similarity:.4f}"
