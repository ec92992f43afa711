"""The web app in a real browser (Debian's headless Chromium through Playwright), on the tiny model: what a
user does, step by step, with a screenshot of every step."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.interfaces.web.conftest import library_files

pytestmark = pytest.mark.slow
WAIT = 60_000  # ms: learning and drawing on 2 busy cores


def textbox(page: Page, elem_id: str):
    return page.locator(f"#{elem_id}").get_by_role("textbox")


def number(page: Page, elem_id: str):
    return page.locator(f"#{elem_id}").get_by_role("spinbutton")


def pick(page: Page, elem_id: str, option: str) -> None:
    """Choose an option of a Gradio dropdown (opened by clicking its input)."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}")).click()
    page.keyboard.press("Escape")


def progress_values(page: Page, done: str) -> list[int]:
    """Every value the progress bar shows until the status says `done`."""
    seen: list[int] = []
    deadline = time.monotonic() + WAIT / 1000
    while time.monotonic() < deadline and done not in page.locator("#learn-status").inner_text():
        bar = page.locator("#learn-progress progress")
        if bar.count():
            value = int(bar.get_attribute("value") or 0)
            if not seen or seen[-1] != value:
                seen.append(value)
        time.sleep(0.05)
    return seen


def learn(page: Page, name: str, steps: int) -> None:
    textbox(page, "name").fill(name)
    number(page, "steps").fill(str(steps))
    page.click("#learn")


def test_learn_draw_export_import_remove(page: Page, app_url: str, studio, photos: Path, shot, tmp_path: Path):
    requested: list[str] = []  # every request the browser makes: fonts, scripts and API calls alike
    page.on("request", lambda request: requested.append(request.url))
    page.goto(app_url)
    expect(page.locator("#model-banner")).to_contain_text("random weights")
    shot(page, "start")

    # Learn: the photo's faces and the aligned crop before anything is learned
    page.locator("#photo input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    expect(page.locator("#faces img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#face input")).to_have_value(re.compile(r"^0: 90 px"))
    shot(page, "faces")
    learn(page, "ada", 30)
    values = progress_values(page, "Learned")
    expect(page.locator("#learn-status")).to_contain_text("Learned ada", timeout=WAIT)
    moving = sorted({value for value in values if 0 < value < 30})
    assert len(moving) >= 3, f"the progress bar should move through the steps, it showed {values}"
    assert values == sorted(values) and values[-1] == 30
    expect(page.locator("#learn-progress")).to_contain_text("step 30 / 30")
    shot(page, "learned")
    assert "ada.safetensors" in library_files(studio)

    # Draw: the new identity is offered without reloading the page
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "ada")
    expect(textbox(page, "prompt")).to_have_value("a photo of ada")
    number(page, "draw-steps").fill("3")
    number(page, "count").fill("2")
    page.click("#draw")
    expect(page.locator("#gallery img")).to_have_count(2, timeout=WAIT)
    shot(page, "drawn")
    with page.expect_download() as download:
        page.locator("#draw-files a").first.click()
    png = tmp_path / "download.png"
    download.value.save_as(png)
    with Image.open(png) as image:
        chunks = dict(image.text)
    assert chunks["prompt"] == "a photo of ada" and chunks["seed"] == "42" and chunks["identity"] == "ada"
    assert json.loads(chunks["anybody"])["steps"] == 3
    written = next(studio.out.rglob(download.value.suggested_filename))
    assert png.read_bytes() == written.read_bytes()  # the very PNG `anybody generate` writes

    # Identities: the table with the reference face; details; export and load the file back
    page.get_by_role("tab", name="Identities").click()
    row = page.locator("#library tr", has_text="ada")
    expect(row).to_contain_text("celeb-basis")
    expect(row.locator("img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    pick(page, "chosen", "ada")
    expect(page.locator("#details")).to_contain_text("ada.safetensors")
    shot(page, "identities")
    pick(page, "export-format", "a1111-safetensors")
    page.click("#export")
    expect(page.locator("#export-file a")).to_be_visible(timeout=WAIT)
    expect(page.locator("#export-hint")).to_contain_text("ada")
    with page.expect_download() as download:
        page.locator("#export-file a").first.click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    shot(page, "exported")
    page.locator("#import-file input[type=file]").set_input_files(str(exported))
    textbox(page, "import-name").fill("ada_copy")
    page.click("#import")
    expect(page.locator("#library-status")).to_contain_text("Imported ada_copy", timeout=WAIT)
    expect(page.locator("#library tr", has_text="ada_copy")).to_contain_text("tiny")  # imported for the app's model
    shot(page, "imported")
    from anybody.identity import Identity

    original, copy = Identity.load("ada", studio.library), Identity.load("ada_copy", studio.library)
    assert copy.embeddings.equal(original.embeddings.float())

    # Remove, after a confirmation
    pick(page, "chosen", "ada_copy")
    page.click("#remove")
    expect(page.locator("#confirm-row")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("Remove ada_copy?")
    shot(page, "confirm-removal")
    page.click("#confirm-remove")
    expect(page.locator("#library-status")).to_contain_text("Removed ada_copy", timeout=WAIT)
    expect(page.locator("#library tr", has_text="ada_copy")).to_have_count(0)
    assert "ada_copy.safetensors" not in library_files(studio) and "ada.safetensors" in library_files(studio)
    shot(page, "removed")
    outside = [url for url in requested if not url.startswith((app_url, "data:", "blob:"))]
    assert requested and not outside, f"the page asked for something outside the app: {outside}"


def test_stop_keeps_the_checkpoint_a_second_tab_waits_and_learning_resumes(page: Page, app_url: str, studio,
                                                                          shot):
    page.goto(app_url)
    page.click("#use-sample")
    expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
    learn(page, "bea", 5000)
    expect(page.locator("#learn-progress")).to_contain_text("loss", timeout=WAIT)

    # a second tab asks for a drawing: it waits for the model and sees its place in the queue
    other = page.context.new_page()
    other.goto(app_url)
    other.get_by_role("tab", name="Draw").click()
    textbox(other, "prompt").fill("a photo of a cat")
    number(other, "draw-steps").fill("2")
    number(other, "count").fill("1")
    other.click("#draw")
    expect(other.locator("#gallery")).to_contain_text(re.compile(r"queue: 1/\d+"), timeout=WAIT)
    shot(other, "second-tab-queued")

    page.click("#stop")
    expect(page.locator("#learn-status")).to_contain_text("Stopped", timeout=WAIT)
    stopped = int(re.search(r"after step (\d+)", page.locator("#learn-status").inner_text()).group(1))
    assert ".checkpoints/bea.safetensors" in library_files(studio)
    assert "bea.safetensors" not in library_files(studio)
    expect(page.locator("#if-interrupted")).to_be_visible()  # a later start offers to resume
    expect(page.locator("#if-interrupted input[value=resume]")).to_be_checked()
    shot(page, "stopped")
    expect(other.locator("#gallery img")).to_have_count(1, timeout=WAIT)  # the model was handed over
    shot(other, "second-tab-drawn")

    number(page, "steps").fill(str(stopped + 5))
    page.click("#learn")
    expect(page.locator("#learn-status")).to_contain_text("Learned bea", timeout=WAIT)
    expect(page.locator("#learn-status")).to_contain_text(f"resumed from step {stopped}")
    expect(page.locator("#if-interrupted")).to_be_hidden()
    assert ".checkpoints/bea.safetensors" not in library_files(studio)
    shot(page, "resumed")


def test_a_sefi_identity_offers_the_attention_view(page: Page, app_url: str, studio, photos: Path, shot):
    studio.learn(photos / "sample_face.jpg", "sia", "sefi", 3)
    page.goto(app_url)
    page.get_by_role("tab", name="Draw").click()
    expect(page.locator("#attention-box")).to_be_hidden()
    pick(page, "identities", "sia")
    expect(page.locator("#attention-box")).to_be_visible()
    number(page, "draw-steps").fill("2")
    page.locator("#attention-box button", has_text="Show the attention view").click()
    expect(page.locator("#attention-map img")).to_be_visible(timeout=WAIT)
    shot(page, "attention")


def test_with_several_faces_another_one_can_be_picked(page: Page, app_url: str, photos: Path, shot):
    page.goto(app_url)
    page.locator("#photo input[type=file]").set_input_files(str(photos / "two-faces.jpg"))
    expect(page.locator("#faces-note")).to_contain_text("The photo has 2 faces; face 0 will be learned", timeout=WAIT)
    first = page.locator("#aligned img").get_attribute("src")
    pick(page, "face", "1:")
    expect(page.locator("#faces-note")).to_contain_text("face 1 will be learned", timeout=WAIT)
    expect(page.locator("#aligned img")).not_to_have_attribute("src", first)
    shot(page, "face-1-picked")
