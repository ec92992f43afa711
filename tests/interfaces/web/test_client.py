"""The app is an API too: a script learns and draws through `gradio_client`, as docs/web.md shows, through
the same queue and with the same one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.interfaces.web.conftest import library_files
from tests.robustness import bad_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app_url: str):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def test_a_script_learns_and_draws(client, studio, photos: Path):
    from gradio_client import handle_file

    progress, status = client.predict(handle_file(str(photos / "sample_face.jpg")), 0, "cyd", "celeb-basis", 12,
                                      "resume", api_name="/learn")
    assert "Learned **cyd**" in status and "step 12 / 12" in progress
    assert "cyd.safetensors" in library_files(studio)
    (entry,) = [entry for entry in studio.entries() if entry.name == "cyd"]
    assert entry.face.size == (96, 96) and not entry.face_placeholder  # learned through the API: its face shows

    gallery, files = client.predict("a photo of cyd on the moon", ["cyd"], "blurry", 7, 2, 7.5, 0, 0, 2,
                                    api_name="/draw")
    assert len(gallery) == 2 and [item["caption"] for item in gallery] == ["seed 7", "seed 8"]
    with Image.open(files[1]) as image:
        details = json.loads(image.text["anybody"])
    assert details["prompt"] == "a photo of cyd on the moon" and details["negative_prompt"] == "blurry"
    assert details["seed"] == 8 and details["identities"] == ["cyd"] and details["model"] == "tiny"


def test_a_refused_request_carries_the_cli_line(client, studio, photos: Path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    before = library_files(studio)
    with pytest.raises(AppError, match=r"The identity name '\.\./x' has characters a name cannot have\. Use"):
        client.predict(handle_file(str(photos / "sample_face.jpg")), 0, "../x", "celeb-basis", 3, "resume",
                       api_name="/learn")
    with pytest.raises(AppError, match=r"No identity called 'nobody' in the library"):
        client.predict("a photo of nobody", ["nobody"], "", 1, 2, 7.5, 0, 0, 1, api_name="/draw")
    assert library_files(studio) == before


def test_a_script_stops_its_drawing_and_keeps_the_pictures_finished(client, studio):
    bad_files.identity("kit").save(library=studio.library)
    job = client.submit("a photo of kit", ["kit"], "", 42, 40, 7.5, 0, 0, 6, api_name="/draw")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the drawing is into its second image (Gradio's progress)
        progress = job.status().progress_data
        if progress and progress[0].index is not None and progress[0].index > 40:
            break
        time.sleep(0.1)
    client.predict(api_name="/stop_drawing")  # the same client: its own drawing
    gallery, files = job.result()
    assert 1 <= len(gallery) == len(files) < 6
    assert [item["caption"] for item in gallery] == [f"seed {42 + i}" for i in range(len(gallery))]
