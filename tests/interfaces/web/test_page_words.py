"""What the page says, without a browser: a problem in the page's words (no command-line flag, no server
folder), the export's how-to for every format, and the details a person reads."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from anybody.errors import IdentityError, UsageError
from tests.robustness import bad_files

pytestmark = pytest.mark.slow  # importing Gradio


@pytest.fixture(scope="module")
def events(studio):
    from anybody.interfaces.web.app import Events

    return Events(studio)


def test_a_problem_is_said_in_the_pages_words(events, studio):
    from anybody.interfaces.web.app import users_problem

    upload = studio.work / "0a1b2c" / "notes.jpg"
    assert events.in_page_words(UsageError(f"The photo {upload} is not an image", "Use a JPEG")) == (
        "The photo notes.jpg is not an image. Use a JPEG.")
    assert events.in_page_words(IdentityError("cleo is taken", "Pass --replace to learn it again")) == "cleo is taken."
    memory = users_problem(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    said = events.in_page_words(memory)
    assert said.startswith("Out of memory (it tried to allocate 2.00 GiB more). Draw smaller pictures (Width, Height)")
    assert "--" not in said
    assert users_problem(RuntimeError("a bug")) is None


def test_the_export_says_what_to_do_and_the_word_to_type_never_the_servers_folder(events, studio):
    from anybody.identity.formats import FORMATS

    bad_files.identity("lou").save(library=studio.library)
    for format in FORMATS:
        _, howto = events.export("lou", format)
        text = html.unescape(re.sub(r"<[^>]+>", " ", howto))
        assert str(studio.work) not in text and "&" not in text, (format, text)
        assert "Type in the prompt" in text and "lou" in text.split("Type in the prompt", 1)[1], (format, text)
    _, howto = events.export("lou", "invokeai")
    assert "<code>&lt;lou&gt;</code>" in howto  # shown as <lou>, not as "&gt;"


def test_the_details_are_labelled_rows(events, studio, photos: Path):
    from anybody.interfaces.web.app import detail_rows

    identity = studio.learn(photos / "sample_face.jpg", "mia", "celeb-basis", 3)
    rows = dict(detail_rows(events.details("mia")))
    assert list(rows) == ["Name", "Family", "Method", "Base model", "Photos", "Steps", "Final loss", "Size",
                          "Created"]
    assert rows["Name"] == "mia" and rows["Family"] == "sd1" and rows["Method"] == "celeb-basis"
    assert rows["Base model"] == "tiny" and rows["Photos"] == "sample_face.jpg" and rows["Steps"] == "3"
    assert float(rows["Final loss"]) == pytest.approx(float(identity.metadata["final_loss"]))
    assert re.fullmatch(r"[\d.]+ kB · 2 × 32 vectors", rows["Size"]) and rows["Created"][:4].isdigit()
    assert "file" not in events.details("mia")  # the server's path is not the page's business
