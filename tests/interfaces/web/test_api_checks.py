"""Gradio's API is as strict as the page: every endpoint, called through `gradio_client` (or plain HTTP) with
paths, traversals, out-of-range numbers and unknown choices, refuses with anybody's one line, and no file
outside the library is opened, exported or removed (a victim file in a folder of its own stays byte for
byte). The same checks without Gradio: test_studio_checks.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.interfaces.web.conftest import library_files
from tests.robustness import bad_files

pytestmark = pytest.mark.slow
NAME_REFUSED = r"^The identity name (.+ has characters a name cannot have|is \d+ characters long \(at most 40\))"
CHOICE_REFUSED = r"is not one of the choices\. Choose one of|is not in the list of choices"
"""A choice the page does not offer: the studio's refusal, or Gradio's own where its component (a Radio)
checks the value before the event runs."""


@pytest.fixture(scope="module")
def client(app_url: str):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def endpoints(client) -> dict[str, list[dict]]:
    """Every named endpoint of the app and its parameters, as the API page lists them."""
    return {name: info["parameters"]
            for name, info in client.view_api(return_format="dict", print_info=False)["named_endpoints"].items()}


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An identity file outside the library, and a textual-inversion embedding beside it."""
    folder = tmp_path_factory.mktemp("victim")
    path = bad_files.identity("secret").save(folder / "secret.safetensors")
    (folder / "notes.txt").write_text("not anybody's")
    return path


@pytest.fixture(scope="module")
def alice(studio):
    """An identity of the app's library to export (removed after this module)."""
    path = bad_files.identity("apix").save(library=studio.library)
    yield "apix"
    path.unlink(missing_ok=True)


def _fingerprint(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def _arguments(parameters: list[dict], **given: object) -> dict[str, object]:
    """Every parameter of an endpoint by name: `given`, else the page's own value, else the API's example."""
    arguments = {}
    for parameter in parameters:
        name = parameter["parameter_name"]
        default = parameter["parameter_default"] if parameter["parameter_has_default"] else parameter["example_input"]
        arguments[name] = given.pop(name, default)
    assert not given, f"no such parameters: {sorted(given)}"
    return arguments


def _cases(victim: Path, photo, embedding, no_face, notes) -> list[tuple[str, dict, str]]:
    """(endpoint, arguments, the refusal it must answer with)."""
    outside, traversal = str(victim), "../../../../etc/passwd"
    draw = {"prompt": "a photo of apix", "identities": ["apix"]}
    learn = {"photo": photo, "name": "bob", "method": "celeb-basis", "steps": 3}
    swap = {"photo": photo, "identity": "apix", "face": 0, "prompt": "", "steps": 4}
    scene = {"background": photo, "layers": [], "composite": None}
    return [
        ("/details", {"name": outside}, NAME_REFUSED),
        ("/details", {"name": traversal}, NAME_REFUSED),
        ("/details", {"name": "secret"}, r"No identity called 'secret' in the library"),
        ("/export", {"name": outside, "format": "comfyui"}, NAME_REFUSED),
        ("/export", {"name": "../victim/secret", "format": "comfyui"}, NAME_REFUSED),
        ("/export", {"name": "apix", "format": "../kohya"}, CHOICE_REFUSED),
        ("/remove", {"name": outside}, NAME_REFUSED),
        ("/remove", {"name": traversal}, NAME_REFUSED),
        ("/draw", {**draw, "identities": [outside]}, NAME_REFUSED),
        ("/draw", {**draw, "count": 10_000}, r"Images must be between 1 and 16 \(got 10000\)\. Set Images to 16"),
        ("/draw", {**draw, "steps": 100_000}, r"Steps must be between 1 and 150 \(got 100000\)"),
        ("/draw", {**draw, "width": 8192}, r"Width must be between 0 and 2048 \(got 8192\)"),
        ("/draw", {**draw, "height": 100}, r"Height must be a multiple of 8 \(got 100\)"),
        ("/draw", {**draw, "guidance": 1e9}, r"Guidance must be between 0 and 30 \(got 1000000000\)"),
        ("/draw", {**draw, "seed": 2**40}, r"Seed must be between 0 and 4294967295 \(got 1099511627776\)"),
        ("/draw", {**draw, "prompt": "a photo of apix " * 100}, r"Prompt is 1,600 characters long \(at most 1,000\)"),
        ("/draw", {**draw, "strength": 5}, r"Strength must be between 0\.01 and 1 \(got 5\)"),
        ("/draw", {**draw, "scene": scene, "strength": 0.01, "steps": 10}, r"With Strength 0\.01 and 10 Steps not one "
                                                                          r"step is drawn"),
        ("/draw", {**draw, "scene": {**scene, "layers": [notes]}}, r"The painted layer 1 is not an image"),
        ("/draw", {**draw, "scene": {"background": None, "layers": [photo]}}, r"A mask was painted with no scene "
                                                                              r"photo under it"),
        ("/draw", {**draw, "control": photo, "controlnet": outside}, CHOICE_REFUSED),
        ("/draw", {**draw, "controlnet": "../../controlnets/secret"}, CHOICE_REFUSED),
        ("/draw", {**draw, "control_kind": "sobel"}, CHOICE_REFUSED),
        ("/draw", {**draw, "control_scale": 100}, r"Control scale must be between 0 and 2 \(got 100\)"),
        ("/draw", {**draw, "places": {"apix": "0,0,2,1"}}, r"The place 0,0,2,1 of apix reaches outside the picture"),
        ("/draw", {**draw, "places": {"secret": "left"}}, r"There is a place for secret, who is not drawn"),
        ("/swap_faces", {"photo": no_face}, r"No face was found in the photo\."),
        ("/swap", {**swap, "identity": outside}, NAME_REFUSED),
        ("/swap", {**swap, "identity": traversal}, NAME_REFUSED),
        ("/swap", {**swap, "face": 7}, r"There is no face 7: the photo has 1 face \(0\)\. Choose one in Face to swap"),
        ("/swap", {**swap, "face": "everyone"}, r"Face to swap must be a number \(got 'everyone'\)"),
        ("/swap", {**swap, "strength": 2}, r"Strength must be between 0\.01 and 1 \(got 2\)"),
        ("/swap", {**swap, "steps": 1000}, r"Steps must be between 1 and 150 \(got 1000\)"),
        ("/swap", {**swap, "seed": -1}, r"Seed must be between 0 and 4294967295 \(got -1\)"),
        ("/swap", {**swap, "prompt": "a photo of a cat"}, r"The prompt does not mention apix"),
        ("/attention", {**draw, "identities": [traversal]}, NAME_REFUSED),
        ("/attention", {**draw, "steps": 1000}, r"Steps must be between 1 and 150 \(got 1000\)"),
        ("/learn", {**learn, "name": "../evil"}, NAME_REFUSED),
        ("/learn", {**learn, "steps": 1_000_000}, r"Steps must be between 1 and 10000 \(got 1000000\)"),
        ("/learn", {**learn, "method": "evil"}, CHOICE_REFUSED),
        ("/learn", {**learn, "if_interrupted": "maybe"}, CHOICE_REFUSED),
        ("/learn", {**learn, "face": 5}, r"There is no face 5: the photo has 1 face \(0\)\. Choose one in Face to"),
        ("/import", {"file": embedding, "name": "../evil"}, NAME_REFUSED),
        ("/import", {"file": embedding, "name": "apix"}, r"The library already has an identity called apix\. "
                                                         r"Choose another name \(e\.g\. apix_2\), or tick Replace"),
    ]


def test_every_endpoint_refuses_paths_traversals_and_out_of_range_numbers_with_anybodys_line(
        client, endpoints, studio, victim: Path, alice: str, photos: Path, tmp_path: Path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from safetensors.torch import save_file

    save_file({"emb_params": bad_files.identity("x").embeddings}, str(tmp_path / "embedding.safetensors"))
    cases = _cases(victim, handle_file(str(photos / "sample_face.jpg")),
                   handle_file(str(tmp_path / "embedding.safetensors")), handle_file(str(photos / "no-face.png")),
                   handle_file(str(photos / "notes.jpg")))
    tried = {endpoint for endpoint, _, _ in cases}
    without_inputs = {endpoint for endpoint, parameters in endpoints.items() if not parameters}  # /stop, ...
    untried = set(endpoints) - tried - without_inputs
    assert untried == {"/faces"}, "an endpoint with no refusal case here (/faces takes a file: tried below)"
    before = library_files(studio), _fingerprint(victim.parent)
    for endpoint, given, refusal in cases:
        with pytest.raises(AppError, match=refusal) as refused:
            client.predict(**_arguments(endpoints[endpoint], **given), api_name=endpoint)
        assert "\n" not in str(refused.value) and " --" not in str(refused.value), (endpoint, str(refused.value))
        assert (library_files(studio), _fingerprint(victim.parent)) == before, f"{endpoint} {given} changed files"


def test_a_file_the_server_has_but_no_one_uploaded_is_never_read(app_url: str, endpoints, studio, victim: Path):
    """A request naming a path on the server as a file (not uploading it) is refused by Gradio before the
    event runs: a photo, an embedding or anything else the API takes as a file."""
    import httpx

    file_endpoints = {name: parameters for name, parameters in endpoints.items()
                      if any(parameter["python_type"]["type"] == "filepath" for parameter in parameters)}
    assert {"/faces", "/learn", "/import", "/swap_faces", "/swap", "/draw"} <= set(file_endpoints)
    before = library_files(studio), _fingerprint(victim.parent)
    for endpoint, parameters in file_endpoints.items():
        for path in (victim, victim.parent / "notes.txt", Path("/etc/passwd")):
            as_file = {"path": str(path), "meta": {"_type": "gradio.FileData"}}
            data = [as_file if parameter["python_type"]["type"] == "filepath" else value
                    for parameter, value in zip(parameters, _arguments(parameters).values())]
            asked = httpx.post(f"{app_url}gradio_api/call{endpoint}", json={"data": data}, timeout=60)
            assert asked.status_code == 200, asked.text
            answer = httpx.get(f"{app_url}gradio_api/call{endpoint}/{asked.json()['event_id']}", timeout=120).text
            events = [line.removeprefix("event: ") for line in answer.splitlines() if line.startswith("event: ")]
            assert events == ["error"], (endpoint, path, answer)
    assert (library_files(studio), _fingerprint(victim.parent)) == before


def test_a_scene_or_painted_layer_the_server_has_but_no_one_uploaded_is_never_read(app_url: str, endpoints, studio,
                                                                                    victim: Path):
    """The same for the files inside the scene editor's value (its photo and the layers painted on it)."""
    import httpx

    names = [parameter["parameter_name"] for parameter in endpoints["/draw"]]
    before = library_files(studio), _fingerprint(victim.parent)
    for path in (victim, Path("/etc/passwd")):
        as_file = {"path": str(path), "meta": {"_type": "gradio.FileData"}}
        for scene in ({"background": as_file, "layers": []}, {"background": None, "layers": [as_file]}):
            given = _arguments(endpoints["/draw"], prompt="a photo of apix", identities=["apix"], scene=scene)
            asked = httpx.post(f"{app_url}gradio_api/call/draw", json={"data": [given[name] for name in names]},
                               timeout=60)
            assert asked.status_code == 200, asked.text
            answer = httpx.get(f"{app_url}gradio_api/call/draw/{asked.json()['event_id']}", timeout=120).text
            events = [line.removeprefix("event: ") for line in answer.splitlines() if line.startswith("event: ")]
            assert events == ["error"], (path, scene, answer)
            assert "not an image" not in answer, "the file was opened"
    assert (library_files(studio), _fingerprint(victim.parent)) == before


def test_a_scene_and_a_mask_made_elsewhere_are_drawn_by_name_as_the_guide_shows(client, studio, alice: str,
                                                                                 tmp_path: Path):
    """docs/web.md's call: the scene as the editor's value, a black-and-white mask (no transparency) as its layer."""
    import json

    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(tmp_path / "room.png")
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (20, 10, 50, 40))
    mask.save(tmp_path / "mask.png")
    _, files = client.predict(prompt="a photo of apix", identities=[alice], negative_prompt="", count=1, steps=3,
                              scene={"background": handle_file(str(tmp_path / "room.png")),
                                     "layers": [handle_file(str(tmp_path / "mask.png"))]},
                              strength=1.0, control=handle_file(str(tmp_path / "room.png")), controlnet="tiny",
                              places={alice: "right"}, api_name="/draw")
    [png] = files
    with Image.open(png) as drawn, Image.open(tmp_path / "room.png") as scene:
        record = json.loads(drawn.text["anybody"])
        changed = np.abs(np.asarray(drawn.convert("RGB"), int) - np.asarray(scene, int)).max(-1)
    assert not changed[np.asarray(mask) == 0].any() and changed[np.asarray(mask) == 255].mean() > 10
    assert record["regions"] == {alice: "right"} and record["controlnet"] == "tiny"
