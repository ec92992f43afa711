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
from tests.robustness import bad_files

pytestmark = pytest.mark.slow
WAIT = 60_000  # ms: learning and drawing on 2 busy cores
DRAW_PROGRESS = re.compile(r"image (\d+) of (\d+) · step (\d+) of (\d+)")


def textbox(page: Page, elem_id: str):
    return page.locator(f"#{elem_id}").get_by_role("textbox")


def number(page: Page, elem_id: str):
    return page.locator(f"#{elem_id}").get_by_role("spinbutton")


def pick(page: Page, elem_id: str, option: str) -> None:
    """Choose an option of a Gradio dropdown (opened by clicking its input)."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}")).click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("listbox")).to_have_count(0)  # closed, for what comes next (and the screenshot)


def library_row(page: Page, name: str):
    """The row of the library table that shows `name` (Gradio draws the table's body as rows of cells)."""
    return page.locator("#library [role=row]").filter(has=page.get_by_role("gridcell", name=name, exact=True))


def no_error_badges(page: Page) -> None:
    """No output shows Gradio's red "Error" badge: the page says what went wrong once, in its message."""
    expect(page.locator("[data-testid=status-tracker] .error:visible")).to_have_count(0)


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
    expect(page.locator("#learn-progress")).to_contain_text("Upload a photo of one person")  # what to do first
    shot(page, "start")

    # Learn: the photo's faces and the aligned crop before anything is learned
    page.locator("#photo input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    expect(page.locator("#faces img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#face")).to_be_hidden()  # one face: nothing to pick
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
    expect(page.locator("#gallery")).to_contain_text("none yet")  # what to do to fill it
    pick(page, "identities", "ada")
    expect(textbox(page, "prompt")).to_have_value("a photo of ada")
    number(page, "draw-steps").fill("3")
    number(page, "count").fill("2")
    page.click("#draw")
    expect(page.locator("#gallery img")).to_have_count(2, timeout=WAIT)
    expect(page.locator("#gallery")).to_contain_text("Pictures (2)")
    shot(page, "drawn")
    with page.expect_download() as download:
        page.locator("#draw-files a").first.click()
    png = tmp_path / "download.png"
    download.value.save_as(png)
    with Image.open(png) as image:
        chunks = dict(image.text)
    assert chunks["prompt"] == "a photo of ada" and chunks["seed"] == "42" and chunks["identity"] == "ada"
    assert json.loads(chunks["anybody"])["steps"] == 3
    written = sorted(studio.out.glob(f"*/{download.value.suggested_filename}"))[-1]  # this drawing's folder:
    assert png.read_bytes() == written.read_bytes()  # the very PNG `anybody generate` writes (folders sort by time)

    # Identities: the table with the face; the details as labelled rows; export with how to use it
    page.get_by_role("tab", name="Identities").click()
    row = library_row(page, "ada")
    expect(row).to_contain_text("celeb-basis")
    expect(row.locator("img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    pick(page, "chosen", "ada")
    details = page.locator("#details")
    for label, value in [("Family", "sd1"), ("Method", "celeb-basis"), ("Base model", "tiny"),
                         ("Photos", "sample_face.jpg"), ("Steps", "30")]:
        expect(details.locator("tr", has=page.locator("th", has_text=label))).to_contain_text(value)
    expect(details.locator("tr", has=page.locator("th", has_text="Final loss"))).to_contain_text(
        re.compile(r"\d\.\d+"))
    expect(details.locator("img")).to_be_visible()
    expect(page.locator("#details-json")).to_be_hidden()  # the raw metadata, behind "Show all"
    shot(page, "identities")
    page.locator("#details-all").get_by_text("Show all").click()
    expect(page.locator("#details-json")).to_contain_text("final_loss")
    pick(page, "export-format", "InvokeAI")
    page.click("#export")
    howto = page.locator("#export-howto")
    expect(howto).to_contain_text("<ada>", timeout=WAIT)  # the word to type, as the tool reads it
    expect(howto).to_contain_text("ada.safetensors")
    assert "&gt;" not in howto.inner_text() and str(studio.work) not in howto.inner_text()
    pick(page, "export-format", "AUTOMATIC1111, as safetensors")
    page.click("#export")
    expect(howto).to_contain_text("put ada.safetensors in stable-diffusion-webui/embeddings", timeout=WAIT)
    expect(page.locator("#export-file a")).to_be_visible()
    with page.expect_download() as download:
        page.locator("#export-file a").first.click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    shot(page, "exported")
    assert str(studio.work) not in page.locator("body").inner_text()  # no server path anywhere
    page.locator("#import-box").get_by_text("Import an embedding").click()
    page.locator("#import-file input[type=file]").set_input_files(str(exported))
    textbox(page, "import-name").fill("ada_copy")
    page.click("#import")
    expect(page.locator("#library-status")).to_contain_text("Imported ada_copy", timeout=WAIT)
    expect(library_row(page, "ada_copy")).to_contain_text("tiny")  # imported for the app's model
    expect(library_row(page, "ada_copy")).to_contain_text("imported")  # in place of a face
    shot(page, "imported")
    from anybody.identity import Identity

    original, copy = Identity.load("ada", studio.library), Identity.load("ada_copy", studio.library)
    assert copy.embeddings.equal(original.embeddings.float())

    # Remove, after a confirmation in a dialog over the page
    library_row(page, "ada_copy").locator("[role=gridcell]").nth(1).click()
    expect(page.locator("#chosen input")).to_have_value("ada_copy")
    page.click("#remove")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("Remove ada_copy?")
    box = page.locator("#confirm-text").bounding_box()
    assert box["width"] > 300, f"the question is squeezed into {box['width']} px"
    shot(page, "confirm-removal")
    page.click("#keep")
    expect(dialog).to_have_count(0)
    assert "ada_copy.safetensors" in library_files(studio)
    page.click("#remove")
    page.click("#confirm-remove")
    expect(page.locator("#library-status")).to_contain_text("Removed ada_copy", timeout=WAIT)
    expect(library_row(page, "ada_copy")).to_have_count(0)
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


def test_drawing_shows_image_and_step_and_a_stop_keeps_the_pictures_finished(page: Page, app_url: str, studio,
                                                                           shot):
    bad_files.identity("dex").save(library=studio.library)
    page.goto(app_url)
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "dex")
    number(page, "count").fill("6")
    number(page, "draw-steps").fill("40")
    page.click("#draw")
    seen: list[tuple[int, ...]] = []
    deadline = time.monotonic() + WAIT / 1000
    while time.monotonic() < deadline and not (seen and seen[-1][0] >= 3):
        shown = DRAW_PROGRESS.search(page.locator("#gallery").inner_text())
        if shown and (not seen or seen[-1] != tuple(map(int, shown.groups()))):
            seen.append(tuple(map(int, shown.groups())))
        time.sleep(0.05)
    assert seen and seen[-1][0] >= 3, f"the drawing should say which image and step it is at, it showed {seen}"
    assert all(count == 6 and steps == 40 for _, count, _, steps in seen)
    assert len({image for image, *_ in seen}) >= 2 and len({step for _, _, step, _ in seen}) >= 3
    assert seen == sorted(seen), f"image and step only go forward: {seen}"
    shot(page, "drawing")
    page.click("#stop-drawing")
    label = page.locator("#gallery").get_by_text(re.compile(r"Pictures: stopped, the \d+ finished are kept"))
    expect(label).to_be_visible(timeout=WAIT)
    kept = int(re.search(r"the (\d+) finished", label.inner_text()).group(1))
    assert seen[-1][0] - 1 <= kept < 6
    expect(page.locator("#gallery img")).to_have_count(kept)
    expect(page.locator("#draw-files a")).to_have_count(kept)
    folder = max(studio.out.iterdir(), key=lambda path: path.stat().st_mtime)
    assert sorted(path.name for path in folder.glob("0*.png")) == [f"{i:02d}-seed{42 + i}.png" for i in range(kept)]
    no_error_badges(page)
    shot(page, "stopped")


def test_a_prompt_typed_while_the_server_is_slow_is_kept(page: Page, app_url: str, studio, monkeypatch, shot):
    """Choosing an identity suggests a prompt only into an empty prompt, and a late reply of the server (slowed
    down here) never replaces what the user typed meanwhile."""
    bad_files.identity("eve").save(library=studio.library)
    stages_of = studio.stages_of

    def slow_stages_of(name: str) -> int:
        time.sleep(3)
        return stages_of(name)

    monkeypatch.setattr(studio, "stages_of", slow_stages_of)
    page.goto(app_url)
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "eve")
    expect(textbox(page, "prompt")).to_have_value("a photo of eve", timeout=1500)  # at once: the browser's own
    textbox(page, "prompt").fill("a portrait of eve in the rain")
    expect(page.locator("#prompt-hint")).to_contain_text("Write eve in the prompt", timeout=WAIT)  # the late reply
    expect(textbox(page, "prompt")).to_have_value("a portrait of eve in the rain")
    shot(page, "typed-prompt-kept")

    # a name of the library goes where the cursor was, and is chosen with it
    bad_files.identity("fin").save(library=studio.library)
    page.get_by_role("tab", name="Identities").click()  # the library is listed again
    page.get_by_role("tab", name="Draw").click()
    textbox(page, "prompt").fill("eve and at the beach")
    textbox(page, "prompt").press("Home")
    for _ in range(len("eve and")):
        textbox(page, "prompt").press("ArrowRight")
    page.locator("#names").get_by_text("fin", exact=True).click()
    expect(textbox(page, "prompt")).to_have_value("eve and fin at the beach")
    expect(page.locator("#identities")).to_contain_text("fin")
    shot(page, "name-inserted")


def test_every_identity_shows_its_face_wherever_it_was_learned(page: Page, app_url: str, studio, photos: Path,
                                                               shot, tmp_path: Path):
    from safetensors.torch import save_file

    from anybody.interfaces.cli import main

    assert main(["learn", str(photos / "sample_face.jpg"), "--model", "tiny", "--library", str(studio.library),
                 "--name", "gil", "--steps", "2"]) == 0  # the command line, not the page
    save_file({"emb_params": bad_files.identity("x").embeddings}, str(tmp_path / "embedding.safetensors"))
    studio.import_embedding(tmp_path / "embedding.safetensors", "hex")
    page.goto(app_url)
    page.get_by_role("tab", name="Identities").click()
    expect(library_row(page, "gil").locator("img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(library_row(page, "hex").locator(".face-placeholder")).to_have_text("imported")
    library_row(page, "gil").locator("[role=gridcell]").nth(1).click()
    expect(page.locator("#details img")).to_be_visible()
    expect(page.locator("#details")).to_contain_text("sample_face.jpg")
    shot(page, "faces")


def test_the_photo_can_come_from_the_webcam(page: Page, app_url: str, shot):
    """The browser's webcam films the sample photo (conftest); one picture from it is the photo learned from."""
    page.goto(app_url)
    page.locator("#photo").get_by_role("button", name="Capture from camera").click()
    page.locator("#photo").get_by_role("button", name="Click to Access Webcam").click()
    page.locator("#photo").get_by_role("button", name="capture photo").click()
    expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
    expect(page.locator("#faces img")).to_be_visible()
    expect(page.locator("#face")).to_be_hidden()  # the one face of the photo
    shot(page, "webcam")


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


@pytest.mark.parametrize("size", [(1366, 900), (1920, 1080)], ids=["1366x900", "1920x1080"])
def test_each_tab_has_its_inputs_left_its_results_right_and_its_action_in_view(page: Page, app_url: str, studio,
                                                                              photos: Path, shot, size):
    """The layout of each tab on a laptop and a desktop screen (the screenshots are the ones docs/web.md
    shows): inputs left, results right, the primary button visible without scrolling."""
    width, height = size
    if "ivy.safetensors" not in library_files(studio):
        studio.learn(photos / "sample_face.jpg", "ivy", "celeb-basis", 5)
    page.set_viewport_size({"width": width, "height": height})

    def left_of(inputs: str, results: str) -> None:
        assert page.locator(inputs).bounding_box()["x"] < page.locator(results).bounding_box()["x"]

    def in_view(button: str) -> None:
        box = page.locator(button).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"{button} is below the fold at {size}"

    page.goto(app_url)
    page.click("#use-sample")
    expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
    textbox(page, "name").fill("ivy_2")
    left_of("#photo", "#faces")
    in_view("#learn")
    shot(page, f"learn-{width}x{height}")

    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "ivy")
    textbox(page, "prompt").fill("a photo of ivy on a beach, golden hour")
    number(page, "count").fill("4")
    number(page, "draw-steps").fill("3")
    in_view("#draw")
    page.click("#draw")
    expect(page.locator("#gallery img")).to_have_count(4, timeout=WAIT)
    left_of("#prompt", "#gallery")
    shot(page, f"draw-{width}x{height}")

    page.get_by_role("tab", name="Identities").click()
    library_row(page, "ivy").locator("[role=gridcell]").nth(1).click()
    expect(page.locator("#details")).to_contain_text("ivy")
    left_of("#library", "#details")
    in_view("#export")
    shot(page, f"identities-{width}x{height}")
