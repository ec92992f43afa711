"""The Draw tab's "Scene and control" and the Swap tab in a real browser (Debian's Chromium through Playwright),
on the tiny model: a mask painted by brush on a scene photo, a control image, a place for the identity; a face
swapped on the sample photo. Screenshots at 1366 x 900 of every step."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from anybody.face import find_faces, load_photo
from anybody.generation.swap import face_region
from tests.interfaces.web.test_page import WAIT, no_error_badges, number, pick, textbox

pytestmark = pytest.mark.slow
SCREEN = {"width": 1366, "height": 900}
SWAP_PROGRESS = re.compile(r"face (\d+) of (\d+) · step (\d+) of (\d+)")


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 240 x 160 scene photo (smooth, so a redrawn patch shows)."""
    ys, xs = np.mgrid[0:160, 0:240]
    pixels = np.stack([xs * 255 // 239, ys * 255 // 159, np.full_like(xs, 90)], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("room") / "room.png"
    Image.fromarray(pixels).save(path)
    return path


def upload_scene(page: Page, photo: Path) -> None:
    """Open "Scene and control" and put the photo in the scene editor (its Upload tool)."""
    page.locator("#scene-box").get_by_text("Scene and control").click()
    editor = page.locator("#scene")
    with page.expect_file_chooser() as chooser:
        editor.get_by_role("button", name="Upload").click()
    chooser.value.set_files(str(photo))
    expect(editor.get_by_role("button", name="Brush", exact=True)).to_be_visible(timeout=WAIT)


def paint(page: Page) -> None:
    """A stroke of the brush across the middle of the scene (the photo is centred on the canvas)."""
    editor = page.locator("#scene")
    editor.get_by_role("button", name="Brush", exact=True).click()
    box = editor.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 40, y - 15)
    page.mouse.down()
    page.mouse.move(x + 40, y - 15, steps=12)
    page.mouse.move(x + 40, y + 15, steps=6)
    page.mouse.move(x - 40, y + 15, steps=12)
    page.mouse.up()


def written_mask(studio) -> np.ndarray:
    """The mask the page made from the paint last (white = redrawn)."""
    newest = max(studio.work.glob("mask-*/painted-mask.png"), key=lambda path: path.stat().st_mtime)
    return np.asarray(Image.open(newest))


def test_a_mask_painted_on_a_scene_photo_redraws_only_itself_steered_and_in_its_place(
        page: Page, app_url: str, studio, zoe: str, room: Path, photos: Path, shot, tmp_path: Path):
    page.set_viewport_size(SCREEN)
    page.goto(app_url)
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", zoe)
    expect(textbox(page, "prompt")).to_have_value("a photo of zoe")
    number(page, "draw-steps").fill("4")
    number(page, "count").fill("1")
    upload_scene(page, room)
    expect(page.locator("#scene-box")).to_contain_text("Place of zoe")
    shot(page, "scene-uploaded")
    paint(page)
    number(page, "strength").fill("1")
    page.locator("#control input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    expect(page.locator("#control img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#controlnet input")).to_have_value("tiny")  # the built-in one, for the tiny model
    pick(page, "place-zoe", "left")
    shot(page, "painted")
    page.click("#draw")
    expect(page.locator("#gallery img")).to_have_count(1, timeout=WAIT)
    no_error_badges(page)
    shot(page, "drawn")

    with page.expect_download() as download:
        page.locator("#draw-files a").first.click()
    png = tmp_path / "drawn.png"
    download.value.save_as(png)
    with Image.open(png) as drawn, Image.open(room) as scene:
        record = json.loads(drawn.text["anybody"])
        assert drawn.size == scene.size
        changed = np.abs(np.asarray(drawn.convert("RGB"), int) - np.asarray(scene.convert("RGB"), int)).max(-1)
    mask = written_mask(studio)
    assert mask.shape == changed.shape and 0 < (mask == 255).mean() < 0.5, "the stroke, not the whole photo"
    assert not changed[mask == 0].any(), "every pixel left unpainted is the scene photo's own"
    assert changed[mask == 255].mean() > 10, "the painted part is drawn anew"
    assert record["mask"]["file"] == "painted-mask.png" and record["strength"] == 1
    assert record["controlnet"] == "tiny" and record["control"]["file"] == "sample_face.jpg"
    assert record["regions"] == {"zoe": "left"}


def test_a_face_is_swapped_on_the_sample_photo_and_scored(page: Page, app_url: str, studio, zoe: str,
                                                         photos: Path, shot, tmp_path: Path):
    page.set_viewport_size(SCREEN)
    page.goto(app_url)
    page.get_by_role("tab", name="Swap").click()
    expect(page.locator("#swap-score")).to_contain_text("Upload a photo")  # what to do first
    shot(page, "empty")
    page.locator("#swap-photo input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    expect(page.locator("#swap-faces img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#swap-face input")).to_have_value(re.compile(r"^0: \d+ px \(largest\)"))
    pick(page, "swap-identity", zoe)
    number(page, "swap-steps").fill("24")
    shot(page, "faces-found")
    page.click("#swap")
    seen = []  # "face 1 of 1 · step s of S" while it draws (0.75 of 24 steps run)
    deadline = time.monotonic() + WAIT / 1000
    while time.monotonic() < deadline and "ID similarity" not in page.locator("#swap-score").inner_text():
        shown = SWAP_PROGRESS.search(page.locator("#swapped").inner_text())
        if shown and (not seen or seen[-1] != shown.groups()):
            seen.append(shown.groups())
        time.sleep(0.05)
    assert seen and all(groups[:2] == ("1", "1") and groups[3] == "18" for groups in seen), seen
    expect(page.locator("#swap-score")).to_contain_text("Face 0: ID similarity", timeout=WAIT)
    expect(page.locator("#swapped img")).to_be_visible()
    no_error_badges(page)
    shot(page, "swapped")

    with page.expect_download() as download:
        page.locator("#swap-file a").first.click()
    png = tmp_path / download.value.suggested_filename
    download.value.save_as(png)
    assert png.name == "sample_face-zoe.png"
    before = load_photo(photos / "sample_face.jpg")
    with Image.open(png) as swapped:
        assert swapped.size == before.size and "id_similarity" in swapped.text
        changed = np.abs(np.asarray(swapped.convert("RGB"), int) - np.asarray(before, int)).max(-1)
    [face] = find_faces(before)
    region = np.asarray(face_region(face, before.size))
    assert not changed[region == 0].any() and changed[region == 255].mean() > 10


@pytest.mark.parametrize("size", [(1366, 900), (1920, 1080)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_the_swap_tab_has_its_inputs_left_its_results_right_and_swap_in_view(page: Page, app_url: str, zoe: str,
                                                                             photos: Path, shot, size):
    width, height = size
    page.set_viewport_size({"width": width, "height": height})
    page.goto(app_url)
    page.get_by_role("tab", name="Swap").click()
    page.locator("#swap-photo input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    expect(page.locator("#swap-faces img")).to_be_visible(timeout=WAIT)
    pick(page, "swap-identity", zoe)
    assert page.locator("#swap-photo").bounding_box()["x"] < page.locator("#swap-faces").bounding_box()["x"]
    box = page.locator("#swap").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"Swap is below the fold at {size}"
    shot(page, f"swap-{width}x{height}")
