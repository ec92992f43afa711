"""The web guide's table of what the page shows for the errors a user can cause, row by row in the browser.

Each row's message is shown once in the page, in the page's words (its fields and buttons, never a
command-line flag), with no "Error" badge over any output and no traceback in the page or the terminal; the
library is left exactly as it was (every file, hidden ones included). `ACTIONS` says how each row's input
is given; the rows are read from docs/web.md, so the table cannot drift from what the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.interfaces.web.conftest import ROOT, UPLOAD_LIMIT_MB, library_files
from tests.interfaces.web.test_page import WAIT, no_error_badges, number, pick, textbox
from tests.robustness import bad_files

pytestmark = pytest.mark.slow
GUIDE = ROOT / "docs" / "web.md"
TABLE = "| Input | What the page shows |"


@dataclass(frozen=True)
class Row:
    label: str
    shown: str

    @property
    def message(self) -> str:
        return re.findall(r"`([^`]+)`", self.shown)[-1]


def guide_rows() -> list[Row]:
    table = GUIDE.read_text(encoding="utf-8").split(TABLE, 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.strip().splitlines()[1:]:  # after the |---| line
        label, shown = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        rows.append(Row(label, shown))
    return rows


def upload(name: str) -> Callable:
    def act(page: Page, photos: Path) -> None:
        page.locator("#photo input[type=file]").set_input_files(str(photos / name))
    return act


def learn_sample(name: str, steps: int = 5) -> Callable:
    def act(page: Page, photos: Path) -> None:
        page.click("#use-sample")
        expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
        textbox(page, "name").fill(name)
        number(page, "steps").fill(str(steps))
        page.click("#learn")
    return act


def learn_without_photo(page: Page, photos: Path) -> None:
    textbox(page, "name").fill("dora")
    page.click("#learn")


def draw_with_cleo(prompt: str, count: int = 4) -> Callable:
    def act(page: Page, photos: Path) -> None:
        page.get_by_role("tab", name="Draw").click()
        pick(page, "identities", "cleo")
        textbox(page, "prompt").fill(prompt)
        number(page, "count").fill(str(count))
        page.click("#draw")
    return act


def import_photo_as_embedding(page: Page, photos: Path) -> None:
    page.get_by_role("tab", name="Identities").click()
    page.locator("#import-box").get_by_text("Import an embedding").click()
    page.locator("#import-file input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    textbox(page, "import-name").fill("dana")
    page.click("#import")


def draw_with_strength_zero(page: Page, photos: Path) -> None:
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "cleo")
    page.locator("#scene-box").get_by_text("Scene and control").click()
    number(page, "strength").fill("0")
    page.click("#draw")


def draw_with_cleo_outside(page: Page, photos: Path) -> None:
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "cleo")
    page.locator("#scene-box").get_by_text("Scene and control").click()
    place = page.locator("#place-cleo input")
    place.fill("0,0,2,1")
    place.press("Enter")
    expect(place).to_have_value("0,0,2,1")
    page.click("#draw")


def swap_photo(name: str) -> Callable:
    def act(page: Page, photos: Path) -> None:
        page.get_by_role("tab", name="Swap").click()
        page.locator("#swap-photo input[type=file]").set_input_files(str(photos / name))
    return act


def swap_without_identity(page: Page, photos: Path) -> None:
    swap_photo("sample_face.jpg")(page, photos)
    expect(page.locator("#swap-faces img")).to_be_visible(timeout=WAIT)
    page.click("#swap")


def upload_over_the_limit(page: Page, photos: Path) -> None:
    big = photos / "big.jpg"
    big.write_bytes(bad_files.SAMPLE.read_bytes() * (UPLOAD_LIMIT_MB * 2**20 // bad_files.SAMPLE.stat().st_size + 1))
    page.locator("#photo input[type=file]").set_input_files(str(big))


ACTIONS: dict[str, Callable] = {
    "a photo with no face (`no-face.png`, a gradient)": upload("no-face.png"),
    "a text file named like a photo (`notes.jpg`)": upload("notes.jpg"),
    "a photo with several faces (`two-faces.jpg`)": upload("two-faces.jpg"),
    "an upload over the size limit (`big.jpg`)": upload_over_the_limit,
    "**Learn** with no photo": learn_without_photo,
    "a taken name (`Cleo`, the library has cleo)": learn_sample("Cleo"),
    "a name that is not allowed (`../evil`)": learn_sample("../evil"),
    "**Steps** `-5` on the Learn tab": learn_sample("dora", -5),
    "a prompt without the identity (`a photo of a cat`, cleo chosen)": draw_with_cleo("a photo of a cat"),
    "**Images** `100` on the Draw tab": draw_with_cleo("a photo of cleo", 100),
    "a photo imported as an embedding (`sample_face.jpg`)": import_photo_as_embedding,
    "**Strength** `0` in Scene and control": draw_with_strength_zero,
    "a place outside the picture (`0,0,2,1` for cleo)": draw_with_cleo_outside,
    "a photo with no face on the Swap tab (`no-face.png`)": swap_photo("no-face.png"),
    "**Swap** with no identity chosen": swap_without_identity,
}
LEARNING = {"**Learn** with no photo", "a taken name (`Cleo`, the library has cleo)",
            "a name that is not allowed (`../evil`)", "**Steps** `-5` on the Learn tab"}
"""The rows refused by Learn: its progress line says so."""


def test_every_row_has_an_action_and_every_action_a_row():
    labels = [row.label for row in guide_rows()]
    assert sorted(labels) == sorted(ACTIONS)


def test_no_row_says_a_command_line_flag():
    assert [row.label for row in guide_rows() if re.search(r"(^|\s)--\w", row.message)] == []


@pytest.fixture(scope="module")
def cleo(studio) -> None:
    """An identity of the tiny model's width in the library, for the rows that need one."""
    bad_files.identity("cleo").save(library=studio.library)


@pytest.mark.parametrize("row", guide_rows(), ids=lambda row: re.sub(r"\W+", "-", row.label)[:40])
def test_the_page_shows_what_the_table_says(row: Row, cleo, page: Page, app_url: str, studio, photos: Path, shot,
                                            capfd: pytest.CaptureFixture):
    page.goto(app_url)
    expect(page.locator("#learn-progress")).to_be_visible()
    before = library_files(studio)
    capfd.readouterr()
    ACTIONS[row.label](page, photos)
    pattern = ".*?".join(re.escape(part) for part in row.message.split("…"))
    expect(page.locator("body")).to_contain_text(re.compile(pattern), timeout=WAIT)
    toast = page.locator(".toast-body")
    if toast.count():
        expect(toast).to_have_count(1)  # one message
        expect(toast.first).to_have_css("opacity", "1")
        expect(toast.locator("[data-testid=toast-text]")).to_have_count(1)
    if row.label in LEARNING:
        expect(page.locator("#learn-progress")).to_contain_text("Not learned")
    no_error_badges(page)
    shot(page, "shown")
    assert "Traceback" not in page.content()
    assert "Traceback" not in capfd.readouterr().err  # a user's mistake is no bug: one line, no traceback
    assert library_files(studio) == before
