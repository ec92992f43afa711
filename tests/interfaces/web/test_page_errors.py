"""The table of what the page shows (docs/web.md) for the errors a user can cause, row by row in the browser.

Each row's message is the line the CLI prints after "error: ", shown in the page (never a traceback), and
the library is left exactly as it was (every file, hidden ones included). `ACTIONS` says how each row's input
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
from tests.interfaces.web.test_page import WAIT, number, pick, textbox
from tests.robustness import bad_files

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Row:
    label: str
    shown: str

    @property
    def message(self) -> str:
        return re.findall(r"`([^`]+)`", self.shown)[-1]


def table_rows() -> list[Row]:
    table = (ROOT / "docs" / "web.md").read_text(encoding="utf-8").split("| Input | What the page shows |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.strip().splitlines()[1:]:  # after the |---| line
        label, shown = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        rows.append(Row(label, shown))
    return rows


def upload(name: str) -> Callable:
    def act(page: Page, photos: Path) -> None:
        page.locator("#photo input[type=file]").set_input_files(str(photos / name))
    return act


def learn_sample_as(name: str) -> Callable:
    def act(page: Page, photos: Path) -> None:
        page.click("#use-sample")
        expect(page.locator("#aligned img")).to_be_visible(timeout=WAIT)
        textbox(page, "name").fill(name)
        number(page, "steps").fill("5")
        page.click("#learn")
    return act


def learn_without_photo(page: Page, photos: Path) -> None:
    textbox(page, "name").fill("dora")
    page.click("#learn")


def draw_a_cat_with_cleo(page: Page, photos: Path) -> None:
    page.get_by_role("tab", name="Draw").click()
    pick(page, "identities", "cleo")
    textbox(page, "prompt").fill("a photo of a cat")
    page.click("#draw")


def import_photo_as_embedding(page: Page, photos: Path) -> None:
    page.get_by_role("tab", name="Identities").click()
    page.locator("#import-file input[type=file]").set_input_files(str(photos / "sample_face.jpg"))
    textbox(page, "import-name").fill("dana")
    page.click("#import")


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
    "a taken name (`Cleo`, the library has cleo)": learn_sample_as("Cleo"),
    "a name that is not allowed (`../evil`)": learn_sample_as("../evil"),
    "a prompt without the identity (`a photo of a cat`, cleo chosen)": draw_a_cat_with_cleo,
    "a photo imported as an embedding (`sample_face.jpg`)": import_photo_as_embedding,
}


def test_every_row_has_an_action_and_every_action_a_row():
    labels = [row.label for row in table_rows()]
    assert sorted(labels) == sorted(ACTIONS)


@pytest.fixture(scope="module")
def cleo(studio) -> None:
    """An identity of the tiny model's width in the library, for the rows that need one."""
    bad_files.identity("cleo").save(library=studio.library)


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: re.sub(r"\W+", "-", row.label)[:40])
def test_the_page_shows_what_the_table_says(row: Row, cleo, page: Page, app_url: str, studio, photos: Path, shot):
    page.goto(app_url)
    before = library_files(studio)
    ACTIONS[row.label](page, photos)
    pattern = ".*?".join(re.escape(part) for part in row.message.split("…"))
    expect(page.locator("body")).to_contain_text(re.compile(pattern), timeout=WAIT)
    toast = page.locator(".toast-body")
    if toast.count():
        expect(toast.first).to_have_css("opacity", "1")
    shot(page, "shown")
    assert "Traceback" not in page.content()
    assert library_files(studio) == before
