"""Face swap on the tiny models of every family: only the face's feathered region is redrawn (every other
pixel is the photo's, at its size), faces are picked as learn picks them, the face drawn is scored by the
identity's face recognizer, and bad input is refused in one line before anything is loaded or written."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from anybody.errors import PhotoError, UsageError
from anybody.face import Face, find_faces, load_photo, prepare_face
from anybody.generation.swap import (
    REGION_HEIGHT,
    REGION_WIDTH,
    SWAP_STRENGTH,
    chosen_faces,
    face_region,
    parse_face_choice,
    score_face,
    swap,
)
from anybody.identity import Identity
from anybody.interfaces.cli import main
from anybody.models import text_encoders
from tests.interfaces.test_startup import _start
from tests.robustness.bad_files import OTHER_PERSON, portrait

FAMILIES = ["tiny", "tiny-sd2", "tiny-sdxl"]


def _face(box=(100, 100, 200, 200), turn: float = 0.0) -> Face:
    """A face of the given box whose eyes lie on a line turned by `turn` radians about the box's centre."""
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    side = box[2] - box[0]
    # dlib's order: the eye on the image's right (outer, inner), the one on its left (outer, inner), the nose
    points = np.array([[0.35, -0.15], [0.1, -0.15], [-0.35, -0.15], [-0.1, -0.15], [0.0, 0.15]]) * side
    return Face(box=box, landmarks=points @ rotation.T + centre)


def test_the_region_covers_the_face_and_the_hair_above_it_fades_out_and_turns_with_the_eyes():
    face = _face()
    mask = np.asarray(face_region(face, (300, 320)), dtype=int)
    assert mask.shape == (320, 300)
    assert mask[150, 150] == 255 and mask[110, 110] == 255  # the face, eye to eye
    rows = np.nonzero(mask[:, 150])[0]
    assert 100 - rows.min() > rows.max() - 200  # more room above the box (hair) than below it (chin)
    assert rows.max() - rows.min() == pytest.approx(REGION_HEIGHT * 100, abs=3)
    columns = np.nonzero(mask[125])[0]
    assert columns.max() - columns.min() == pytest.approx(REGION_WIDTH * 100, abs=3)
    ramp = mask[125, columns.min() : 150]
    assert ramp[0] < 60 and np.all(np.diff(ramp) >= 0) and len(set(ramp.tolist())) > 10  # a soft edge
    assert mask[5, 5] == mask[-1, -1] == 0
    turned = np.asarray(face_region(_face(turn=math.pi / 2), (300, 300)), dtype=int)  # lying on its side
    upright = np.asarray(face_region(face, (300, 300)), dtype=int)
    assert np.abs(turned - np.rot90(upright, k=-1)).mean() < 2  # the same region, turned a quarter
    edge = np.asarray(face_region(_face(box=(-40, 10, 60, 110)), (200, 200)))  # a face cut by the left edge
    assert edge[60, 0] == 255 and edge.shape == (200, 200)


def test_faces_are_chosen_by_number_or_all_and_bad_choices_say_which_exist():
    assert parse_face_choice(None) is None and parse_face_choice("2") == 2 and parse_face_choice(" ALL ") == "all"
    with pytest.raises(UsageError, match=r"neither a face number nor 'all'.*--face 0 for the largest"):
        parse_face_choice("left")
    faces = [_face((0, 0, 100, 100)), _face((200, 0, 280, 80)), _face((300, 0, 340, 40))]  # the last too small
    assert chosen_faces(faces, None) == [0] and chosen_faces(faces, 1) == [1] and chosen_faces(faces, "all") == [0, 1]
    with pytest.raises(PhotoError, match=r"There is no face 3: the photo has 3 faces \(valid: 0 to 2\)"):
        chosen_faces(faces, 3)
    with pytest.raises(PhotoError, match="No face was found in the photo"):
        chosen_faces([], "all")


def _identity(pipe, name: str = "alice", staged: bool = False, descriptor: torch.Tensor | None = None) -> Identity:
    """A random identity for the pipeline's family (tokens only, or SeFi-IDE's five stages), with a face."""
    generator = torch.Generator().manual_seed(5)
    widths = {encoder: module.get_input_embeddings().weight.shape[1] for encoder, _, module in text_encoders(pipe)}
    embeddings = {encoder: torch.randn(2, width, generator=generator) * 0.5 for encoder, width in widths.items()}
    stages = {}
    if staged:
        stages = {role: {encoder: torch.randn(5, 2, width, generator=generator) * 0.5
                         for encoder, width in widths.items()} for role in ("stage_keys", "stage_values")}
    return Identity(name, embeddings, metadata={"method": "sefi" if staged else "celeb-basis"},
                    face_descriptor=torch.rand(128, generator=generator) if descriptor is None else descriptor,
                    **stages)


def _changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(after, dtype=int) - np.asarray(before, dtype=int)).max(axis=-1)


@pytest.mark.parametrize("method", ["tokens", "sefi"], ids=["celeb-basis/textual-inversion", "sefi"])
@pytest.mark.parametrize("model", FAMILIES)
def test_only_the_face_region_is_redrawn_at_the_photo_s_size_and_the_face_is_scored(tiny_pipeline, model, method,
                                                                                     tmp_path):
    pipe = tiny_pipeline(model)
    photo = portrait()
    out = tmp_path / "swapped.png"
    result = swap(photo, _identity(pipe, staged=method == "sefi"), pipe, num_inference_steps=2, out=out,
                  progress=False)
    assert result.image.size == photo.size and result.prompt == "a photo of alice"
    [done] = result.faces
    [face] = find_faces(photo)
    assert done.index == 0 and done.box == face.box
    mask = np.asarray(face_region(face, photo.size))
    changed = _changed(photo, result.image)
    assert not changed[mask == 0].any()  # outside the feathered region: the photo's own pixels
    assert changed[mask == 255].mean() > 20  # inside: drawn anew
    assert done.score is not None and done.score.recognizer == "dlib" and -1 <= done.score.similarity <= 1
    text = Image.open(out).text
    details = json.loads(text["anybody"])
    assert details["strength"] == SWAP_STRENGTH and details["image"]["file"] == "(in memory)"
    assert details["swap"]["faces"][0]["score"]["similarity"] == pytest.approx(done.score.similarity)
    assert text["id_similarity"] == f"{done.score.similarity:.4f}" and "Denoising strength: 0.75" in text["parameters"]


def test_every_face_or_one_chosen_by_number_is_swapped(tiny_pipe, tmp_path):
    photo = Image.new("RGB", (480, 256), (128, 128, 128))
    photo.paste(portrait(), (0, 0))
    photo.paste(portrait().resize((205, 205)), (270, 25))  # the same face again, smaller: face 1
    photo.save(tmp_path / "two.png")
    faces = find_faces(photo)
    masks = [np.asarray(face_region(face, photo.size)) for face in faces]
    alice = _identity(tiny_pipe)
    both = swap(tmp_path / "two.png", alice, tiny_pipe, face="all", num_inference_steps=2, progress=False)
    assert [done.index for done in both.faces] == [0, 1]
    changed = _changed(photo, both.image)
    assert not changed[(masks[0] == 0) & (masks[1] == 0)].any()
    assert changed[masks[0] == 255].mean() > 20 and changed[masks[1] == 255].mean() > 20
    second = swap(tmp_path / "two.png", alice, tiny_pipe, face=1, num_inference_steps=2, progress=False)
    changed = _changed(photo, second.image)
    assert not changed[masks[1] == 0].any() and changed[masks[1] == 255].mean() > 20
    assert both.details["image"]["file"] == "two.png"  # a photo given by path is recorded by name and hash


def test_the_score_is_the_recognizer_s_distance_to_the_identity_s_reference_face(tiny_pipe):
    """On the photo itself: its own face is the same person as its descriptor, and not as someone else's."""
    photo = portrait()
    face = find_faces(photo)[0]
    region = face_region(face, photo.size).getbbox()
    own = _identity(tiny_pipe, descriptor=torch.tensor(prepare_face(photo).descriptor))
    other = _identity(tiny_pipe, descriptor=torch.tensor(prepare_face(load_photo(OTHER_PERSON)).descriptor))
    from anybody.face import get_face_encoder

    recognizer = get_face_encoder("dlib")
    same = score_face(photo, face, region, own, recognizer)
    assert same.located == "found" and same.same_person and same.distance < 0.1 and same.similarity > 0.99
    different = score_face(photo, face, region, other, recognizer)
    assert not different.same_person and different.distance > recognizer.same_person_distance
    blank = Image.new("RGB", photo.size, (128, 128, 128))  # no face found there: read at the photo's landmarks
    assert score_face(blank, face, region, own, recognizer).located == "photo's landmarks"


def test_an_identity_without_a_reference_face_is_swapped_and_says_it_is_not_scored(tiny_pipe, tmp_path):
    alice = _identity(tiny_pipe)
    alice.face_descriptor = None
    result = swap(portrait(), alice, tiny_pipe, num_inference_steps=2, out=tmp_path / "x.png", progress=False)
    assert result.faces[0].score is None and "has no reference face" in result.unscored
    assert "has no reference face" in json.loads(Image.open(tmp_path / "x.png").text["anybody"])["swap"]["unscored"]
    assert "id_similarity" not in Image.open(tmp_path / "x.png").text


@pytest.fixture
def swap_folder(tmp_path, tiny_pipe):
    """A library with alice (tiny) and the photos: the portrait and a picture without a face."""
    alice = _identity(tiny_pipe)
    alice.metadata = {"method": "celeb-basis", "base_model": "tiny", "family": "sd1"}
    alice.save(library=tmp_path / "lib")
    portrait().save(tmp_path / "me.jpg", quality=95)
    Image.new("RGB", (300, 200), (90, 140, 200)).save(tmp_path / "sky.png")
    return tmp_path


def test_swap_through_the_cli_prints_the_score_and_writes_one_png(swap_folder, capsys):
    out = swap_folder / "out" / "me-alice.png"
    assert main(["swap", str(swap_folder / "me.jpg"), "--identity", "alice", "--library", str(swap_folder / "lib"),
                 "--steps", "2", "--strength", "0.5", "--prompt", "a close-up photo of Alice", "--out", str(out)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("Face 0: ID similarity ") and "with alice (distance " in shown[0]
    assert shown[-1] == str(out)
    details = json.loads(Image.open(out).text["anybody"])
    assert details["prompt"] == "a close-up photo of Alice" and details["strength"] == 0.5
    assert details["image"]["file"] == "me.jpg" and details["model"] == "tiny"


@pytest.mark.parametrize(("argv", "message"), [
    (["sky.png"], "No face was found in the photo"),
    (["me.jpg", "--face", "3"], r"There is no face 3: the photo has 1 face \(valid: 0\)"),
    (["me.jpg", "--face", "first"], "--face 'first' is neither a face number nor 'all'"),
    (["me.jpg", "--strength", "1.5"], "strength must be more than 0 and at most 1"),
    (["me.jpg", "--prompt", "a photo of someone"], "The prompt does not mention alice"),
])
def test_bad_swaps_are_one_line_and_write_nothing(swap_folder, capsys, argv, message):
    out = swap_folder / "out.png"
    code = main(["swap", *[str(swap_folder / argv[0]), *argv[1:]], "--identity", "alice", "--library",
                 str(swap_folder / "lib"), "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("error: ") and "\n" not in error
    assert re.search(message, error), error
    assert not out.exists()


@pytest.mark.parametrize("argv", [["sky.png"], ["me.jpg", "--face", "3"], ["me.jpg", "--face", "x"],
                                  ["me.jpg", "--strength", "0"]], ids=["no face", "face out of range",
                                                                       "face not a number", "strength 0"])
def test_swap_refusals_come_before_torch_or_any_diffusion_library_is_imported(swap_folder, argv):
    code, imported = _start(["swap", *argv, "--identity", "alice", "--library", "lib"], swap_folder)
    assert code == 2 and not {"torch", "diffusers", "transformers"} & set(imported), imported
