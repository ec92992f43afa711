"""The studio checks every argument, whoever calls it: identities are names of its library (a path or a
traversal never reaches a file outside it), numbers are within the page's bounds, choices among the page's,
uploads within the limit. Each refusal is one line in the page's words; nothing outside the library is
opened, exported or removed. (Through Gradio's API: test_api_checks.py.)"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from anybody.errors import AnybodyError
from anybody.interfaces.web import limits
from tests.interfaces.web.conftest import library_files
from tests.robustness import bad_files

LIMIT_MB = 1


@pytest.fixture
def victim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An identity file outside the library, what a request must never open, export or remove; a copy of it
    named `secret` in the working folder, where a bare name must not be looked for either."""
    path = bad_files.identity("secret").save(tmp_path / "victim" / "secret.safetensors")
    (path.parent / "secret").write_bytes(path.read_bytes())
    monkeypatch.chdir(path.parent)
    return path


@pytest.fixture
def files(photos: Path, victim: Path, tmp_path: Path) -> dict[str, Path]:
    """The sample photo, a photo over the studio's upload limit, the victim, a photo without a face, a text file
    named like a photo, and a 96 x 64 scene with masks (`mask-square`: another shape; `mask-white`: all white)."""
    big = tmp_path / "big.jpg"
    big.write_bytes((bad_files.SAMPLE.read_bytes() * 100)[: int(1.2 * 2**20)])
    bad_files.make_control_files(tmp_path)
    return {"photo": photos / "sample_face.jpg", "big": big, "victim": victim, "no-face": photos / "no-face.png",
            "notes": photos / "notes.jpg", "scene": tmp_path / "scene.png",
            **{name: tmp_path / f"{name}.png" for name in ("mask-square", "mask-white", "mask-half-size")}}


@pytest.fixture
def checked(web_work: Path, tmp_path: Path, photos: Path):
    """A studio of its own (no model loaded: every refusal comes before it) with one identity, alice."""
    from anybody.interfaces.web.studio import Studio

    studio = Studio("tiny", work=web_work, out=tmp_path / "out", library=tmp_path / "library",
                    max_upload_mb=LIMIT_MB)
    bad_files.identity("alice").save(library=studio.library)
    return studio


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _draw(**changes: object) -> Callable:
    """studio.draw with valid arguments but `changes`."""
    arguments = {"prompt": "a photo of alice", "names": ["alice"], "negative_prompt": "", "seed": 1, "steps": 2,
                 "guidance": 7.5, "width": 0, "height": 0, "count": 1} | changes
    return lambda studio, files: studio.draw(**arguments)


def _with_files(changes: dict[str, object], files: dict[str, Path]) -> dict[str, object]:
    """`changes` with each value that names one of `files` (its key) replaced by that file."""
    return {key: files.get(value, value) if isinstance(value, str) else value for key, value in changes.items()}


def _draw_into(**changes: object) -> Callable:
    """studio.draw into the scene photo (10 steps, strength 0.5) but `changes` (a key of `files` is that file)."""
    def call(studio, files):
        arguments = {"prompt": "a photo of alice", "names": ["alice"], "negative_prompt": "", "seed": 1, "steps": 10,
                     "guidance": 7.5, "width": 0, "height": 0, "count": 1, "scene": files["scene"], "strength": 0.5}
        return studio.draw(**arguments | _with_files(changes, files))
    return call


def _swap(**changes: object) -> Callable:
    """studio.swap of alice into the sample photo (4 steps) but `changes` (a key of `files` is that file)."""
    def call(studio, files):
        arguments = {"photo": files["photo"], "name": "alice", "face": 0, "prompt": "", "strength": 0.75, "steps": 4}
        return studio.swap(**arguments | _with_files(changes, files))
    return call


def _learn(**changes: object) -> Callable:
    """studio.learn with valid arguments (the sample photo unless `photo` is given) but `changes`."""
    def call(studio, files):
        arguments = {"photo": files["photo"], "name": "bob", "method": "celeb-basis", "steps": 3, "face_index": 0}
        return studio.learn(**arguments | changes)
    return call


PATHS = ["{victim}", "{victim_stem}", "secret", "../victim/secret", "../../../../etc/passwd", "/etc/passwd", "..",
         "", "alice/../../victim/secret", "C:\\Windows\\win.ini", "~/secret"]
NAME_CALLS: dict[str, Callable] = {
    "details": lambda studio, name: studio.details(name),
    "export": lambda studio, name: studio.export(name, "comfyui"),
    "remove": lambda studio, name: studio.remove(name),
    "stages": lambda studio, name: studio.stages_of(name),
    "draw": lambda studio, name: studio.draw("a photo of secret", [name], negative_prompt="", seed=1, steps=2,
                                             guidance=7.5, width=0, height=0, count=1),
    "attention": lambda studio, name: studio.attention("a photo of secret", [name], seed=1, steps=2, guidance=7.5),
    "swap": lambda studio, name: studio.swap("/nowhere/me.jpg", name, steps=4),
}


@pytest.mark.parametrize("call", list(NAME_CALLS))
@pytest.mark.parametrize("given", PATHS)
def test_an_identity_is_a_name_of_the_library_never_a_path(checked, victim: Path, call: str, given: str):
    name = given.format(victim=victim, victim_stem=victim.with_suffix(""))
    before, library_before = _fingerprint(victim.parent), _fingerprint(Path(checked.library))
    with pytest.raises(AnybodyError) as refused:
        NAME_CALLS[call](checked, name)
    line = str(refused.value)
    assert "\n" not in line and ("The identity name" in line or "No identity called" in line), line
    assert "--" not in line, f"a command-line flag in the page's words: {line}"
    assert _fingerprint(victim.parent) == before and _fingerprint(Path(checked.library)) == library_before


@pytest.mark.parametrize("names", ["alice", [["alice"]], [1], ["alice"] * (limits.MAX_IDENTITIES + 1)],
                         ids=["a string", "a nested list", "a number", "too many"])
def test_the_identities_drawn_are_a_short_list_of_names(checked, names: object):
    with pytest.raises(AnybodyError, match=r"Identities must be a list|identity name|is empty"):
        checked.draw("a photo of alice", names, negative_prompt="", seed=1, steps=2, guidance=7.5, width=None,
                     height=None, count=1)


NUMBERS: dict[str, tuple[Callable, str]] = {
    "10,000 images": (_draw(count=10_000), "Images must be between 1 and 16 (got 10000). Set Images to 16 or less."),
    "no image": (_draw(count=0), "Images must be between 1 and 16 (got 0). Set Images to 1 or more."),
    "half an image": (_draw(count=1.5), "Images must be a whole number (got 1.5). Set Images to 2."),
    "images as text": (_draw(count="4"), "Images must be a number (got '4'). Set Images to a number."),
    "images as a truth value": (_draw(count=True), "Images must be a number (got True)."),
    "no images given": (_draw(count=None), "Images must be a number (got None)."),
    "drawing steps": (_draw(steps=151), "Steps must be between 1 and 150 (got 151). Set Steps to 150 or less."),
    "negative steps": (_draw(steps=-5), "Steps must be between 1 and 150 (got -5). Set Steps to 1 or more."),
    "guidance": (_draw(guidance=31), "Guidance must be between 0 and 30 (got 31)."),
    "NaN guidance": (_draw(guidance=math.nan), "Guidance must be a number (got nan)."),
    "infinite seed": (_draw(seed=math.inf), "Seed must be a number (got inf)."),
    "negative seed": (_draw(seed=-1), "Seed must be between 0 and 4294967295 (got -1)."),
    "huge seed": (_draw(seed=2**64), "Seed must be between 0 and 4294967295 (got 18446744073709551616)."),
    "too wide": (_draw(width=4096), "Width must be between 0 and 2048 (got 4096). Set Width to 2048 or less."),
    "negative height": (_draw(height=-8), "Height must be between 0 and 2048 (got -8)."),
    "odd height": (_draw(height=101), "Height must be a multiple of 8 (got 101). Set Height to 104."),
    "learning steps": (_learn(steps=10_001), "Steps must be between 1 and 10000 (got 10001)."),
    "negative learning steps": (_learn(steps=-5), "Steps must be between 1 and 10000 (got -5). Set Steps to 1 or "
                                                  "more."),
    "negative face": (_learn(face_index=-1), "Face to learn must be between 0 and 999 (got -1)."),
    "a face the photo lacks": (_learn(face_index=3), "There is no face 3: the photo has 1 face (0). Choose one in "
                                                     "Face to learn."),
    "a prompt too long": (_draw(prompt="a photo of alice " * 100), "Prompt is 1,700 characters long (at most 1,000)"),
    "a prompt that is not text": (_draw(prompt=7), "Prompt must be text (got 7)."),
    "no strength": (_draw_into(strength=0), "Strength must be between 0.01 and 1 (got 0). Set Strength to 0.01 or "
                                            "more."),
    "strength over 1": (_draw_into(strength=1.5), "Strength must be between 0.01 and 1 (got 1.5). Set Strength to 1 "
                                                  "or less."),
    "strength as text": (_draw_into(strength="0.5"), "Strength must be a number (got '0.5')."),
    "a strength that runs no step": (_draw_into(strength=0.05), "With Strength 0.05 and 10 Steps not one step is "
                                     "drawn (Strength is the share of the steps that run). Set Steps to 20 or more, or "
                                     "Strength higher."),
    "control scale": (_draw_into(control_scale=3), "Control scale must be between 0 and 2 (got 3). Set Control scale "
                                                   "to 2 or less."),
    "a place outside the picture": (_draw(places={"alice": "0,0,2,1"}), "The place 0,0,2,1 of alice reaches outside "
                                    "the picture: each number is a fraction of its width or height, from 0 to 1. "
                                    "Choose one of anywhere, left, right, top, bottom, center in Place of alice"),
    "an unknown place": (_draw(places={"alice": "middle"}), "The place 'middle' of alice is not one of left, right, "
                         "top, bottom, center nor x0,y0,x1,y1. Choose one of anywhere,"),
    "an empty place": (_draw(places={"alice": "0.5,0,0.5,1"}), "The place 0.5,0,0.5,1 of alice is empty"),
    "a place for someone not drawn": (_draw(places={"bob": "left"}), "There is a place for bob, who is not drawn (the "
                                      "identities drawn: alice). Add them to Identities, or set Place of bob to "
                                      "anywhere."),
    "places that are not a map": (_draw(places=["alice"]), "Places must map at most 8 identity names to places (got "
                                                           "['alice'])."),
    "a place too long": (_draw(places={"alice": "l" * 101}), "Place of alice is 101 characters long (at most 100)."),
    "a place that is not text": (_draw(places={"alice": [0, 0, 1, 1]}), "Place of alice must be text (got [0, 0, 1, "
                                                                         "1])."),
    "a negative face to swap": (_swap(face=-1), "Face to swap must be between 0 and 999 (got -1)."),
    "a face to swap the photo lacks": (_swap(face=3), "There is no face 3: the photo has 1 face (0). Choose one in "
                                                      "Face to swap."),
    "a face to swap that is neither a number nor all": (_swap(face="most"), "Face to swap must be a number (got "
                                                                            "'most')."),
    "swap strength": (_swap(strength=0), "Strength must be between 0.01 and 1 (got 0)."),
    "swap steps": (_swap(steps=1000), "Steps must be between 1 and 150 (got 1000)."),
    "a swap prompt without the identity": (_swap(prompt="a photo of a cat"), "The prompt does not mention alice."),
    "a swap prompt too long": (_swap(prompt="alice " * 200), "Prompt is 1,200 characters long (at most 1,000)."),
}
CHOICES: dict[str, tuple[Callable, str]] = {
    "method": (_learn(method="evil"), "Method 'evil' is not one of the choices. Choose one of: celeb-basis, "),
    "resume choice": (_learn(if_interrupted="maybe"), "An interrupted run 'maybe' is not one of the choices. "
                                                      "Choose one of: resume, start over."),
    "export format": (lambda studio, files: studio.export("alice", "../kohya"),
                      "Export format '../kohya' is not one of the choices. Choose one of: a1111, "),
    "export format that is not text": (lambda studio, files: studio.export("alice", ["a1111"]),
                                       "Export format ['a1111'] is not one of the choices."),
    "a ControlNet by path": (_draw_into(control="scene", controlnet="/etc/passwd"),
                             "ControlNet '/etc/passwd' is not one of the choices. Choose one of: tiny"),
    "a ControlNet not offered, without a control image": (_draw_into(controlnet="lllyasviel/sd-controlnet-canny"),
                                                          "ControlNet 'lllyasviel/sd-controlnet-canny' is not one of "
                                                          "the choices."),
    "a control image without a ControlNet": (_draw_into(control="scene", controlnet=""), "No ControlNet is chosen for "
                                             "the control image. Choose one in ControlNet."),
    "control image kind": (_draw_into(control="scene", controlnet="tiny", control_kind="sobel"),
                           "Control image kind 'sobel' is not one of the choices. Choose one of: as given, canny."),
}
UPLOADS: dict[str, tuple[Callable, str]] = {
    "a photo over the limit": (lambda studio, files: studio.learn(files["big"], "bob", "celeb-basis", 3),
                               f"The photo big.jpg is 1.2 MB, over the {LIMIT_MB} MB limit. Upload a smaller photo."),
    "a photo that is not there": (_learn(photo="/nowhere/me.jpg"), "The photo me.jpg is not a file that was uploaded"),
    "a photo that is not a path": (_learn(photo={"path": "/etc/passwd"}), "No photo was given. Upload a photo."),
    "a preview over the limit": (lambda studio, files: studio.preview(files["big"]),
                                 "The photo big.jpg is 1.2 MB, over the 1 MB limit."),
    "an embedding over the limit": (lambda studio, files: studio.import_embedding(files["big"], "imp"),
                                    "The embedding file big.jpg is 1.2 MB, over the 1 MB limit."),
    "an embedding under a taken name": (lambda studio, files: studio.import_embedding(files["victim"], "alice"),
                                        "The library already has an identity called alice. Choose another name "
                                        "(e.g. alice_2), or tick Replace to replace it."),
    "a taken name": (_learn(name="Alice"), "The library already has an identity called alice. Choose another name "
                                           "(e.g. alice_2), or tick Replace to learn it again."),
    "an empty name": (_learn(name="  "), "The identity name is empty. Type a short name, such as alice."),
    "a scene over the limit": (_draw_into(scene="big"), "The scene photo big.jpg is 1.2 MB, over the 1 MB limit. "
                                                        "Upload a smaller scene photo."),
    "a scene that is not there": (_draw_into(scene="/nowhere/room.jpg"), "The scene photo room.jpg is not a file that "
                                                                         "was uploaded."),
    "a scene that is not an image": (_draw_into(scene="notes"), "The scene photo notes.jpg is not an image anybody "
                                                                "can read."),
    "a mask without a scene": (_draw_into(scene=None, mask="mask-half-size"), "A mask was painted with no scene photo "
                               "under it. Upload the scene photo first, then paint on it where to draw."),
    "a mask of another shape": (_draw_into(mask="mask-square"), "The mask mask-square.png is 64 x 64 px, another "
                                "shape than the scene photo (96 x 64 px). Paint the mask on the scene photo itself, "
                                "or give it the scene photo's size."),
    "an all-white mask": (_draw_into(mask="mask-white"), "The mask mask-white.png is all white: it asks to redraw "
                                                         "everything (a transparent background counts as white)."),
    "a mask over the limit": (_draw_into(mask="big"), "The mask big.jpg is 1.2 MB, over the 1 MB limit."),
    "a control image over the limit": (_draw_into(control="big", controlnet="tiny"), "The control image big.jpg is "
                                                                                     "1.2 MB, over the 1 MB limit."),
    "a control image that is not an image": (_draw_into(control="notes", controlnet="tiny"), "The control image "
                                             "notes.jpg is not an image anybody can read."),
    "a swap photo over the limit": (_swap(photo="big"), "The photo big.jpg is 1.2 MB, over the 1 MB limit."),
    "a swap photo that is not an image": (_swap(photo="notes"), "The photo notes.jpg is not an image anybody can "
                                                                "read."),
    "a swap photo without a face": (_swap(photo="no-face", face="all"), "No face was found in the photo."),
    "faces to swap in a photo over the limit": (lambda studio, files: studio.faces_to_swap(files["big"]),
                                                "The photo big.jpg is 1.2 MB, over the 1 MB limit."),
    "faces to swap in a photo without a face": (lambda studio, files: studio.faces_to_swap(files["no-face"]),
                                                "No face was found in the photo."),
}


@pytest.mark.parametrize("case", [*NUMBERS, *CHOICES, *UPLOADS])
def test_numbers_choices_and_uploads_are_checked_in_the_pages_words(checked, files: dict[str, Path], case: str):
    call, message = {**NUMBERS, **CHOICES, **UPLOADS}[case]
    before = library_files(checked), _fingerprint(files["victim"].parent)
    with pytest.raises(AnybodyError) as refused:
        call(checked, files)
    line = str(refused.value).replace(f"{files['notes'].parent}{os.sep}", "")  # the page names uploads by name
    assert line.startswith(message) and "\n" not in line and " --" not in line, line
    assert (library_files(checked), _fingerprint(files["victim"].parent)) == before
    assert checked._pipe is None, "refused before the model was loaded"


def test_the_bounds_take_what_the_page_sends():
    assert limits.IMAGES.check(16) == 16 and limits.IMAGES.check(4.0) == 4 and isinstance(limits.IMAGES.check(4.0), int)
    assert limits.GUIDANCE.check(7.25) == 7.25 and limits.WIDTH.check(0) == 0 and limits.WIDTH.check(2048) == 2048
    assert limits.SEED.check(2**32 - 1) == 2**32 - 1
    assert limits.check_choice("comfyui", ["a1111", "comfyui"], "Export format") == "comfyui"
