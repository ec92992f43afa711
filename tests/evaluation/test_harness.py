"""The whole evaluation on the built-in tiny model: two photos, two methods, three prompts, report files
that open offline, and a rerun that reuses every identity and image."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from anybody.evaluation import EvaluationResult, EvaluationSettings, evaluate
from anybody.evaluation.report import markdown

PROMPTS = "a photo of {} on a beach\n[style]\nan oil painting of {}\n[action]\na photo of {} reading a book\n"


class References(HTMLParser):
    """Every address an HTML page refers to, and the tags that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.addresses += [value for name, value in attrs if name in ("src", "href", "srcset", "data") and value]


def check_offline(out: Path) -> list[str]:
    """The HTML's image files, each checked to exist inside `out`; nothing comes from the network."""
    text = (out / "report.html").read_text(encoding="utf-8")
    parser = References()
    parser.feed(text)
    assert "http://" not in text and "https://" not in text and "url(" not in text and "@import" not in text
    assert not parser.tags & {"script", "link", "iframe", "object", "embed"}
    for address in parser.addresses:
        path = (out / address).resolve()
        assert path.is_file() and path.is_relative_to(out.resolve()), address
    return parser.addresses


def image_files(out: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in (out / "images").rglob("*.png")}


@pytest.mark.slow
def test_the_harness_scores_two_methods_and_a_rerun_draws_nothing_new(tmp_path, sample_photo, mirrored_photo,
                                                                     tiny_clip):
    faces = tmp_path / "faces"
    faces.mkdir()
    shutil.copy(sample_photo, faces / "eileen.jpg")
    shutil.copy(mirrored_photo, faces / "mirror.png")
    (tmp_path / "prompts.txt").write_text(PROMPTS, encoding="utf-8")
    out = tmp_path / "report"
    settings = EvaluationSettings(photos=str(faces), model="tiny", methods=["celeb-basis", "textual-inversion"],
                                  prompts=str(tmp_path / "prompts.txt"), images_per_prompt=2, steps=2, views=2,
                                  drawing_steps=2, out=str(out))

    first = evaluate(settings, progress=False)
    assert first.new_images == 2 * 2 * 3 * 2  # methods x people x prompts x images
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]) == {"celeb-basis", "textual-inversion"}
    assert all(entry["images"] == 12 and entry["identities"] == 2 for entry in report["summary"].values())
    assert report["summary"]["celeb-basis"]["metrics"]["clip"] is None
    assert "no CLIP model was given" in report["clip"]["empty_because"]
    assert any("face encoder the methods learned with" in note for note in report["warnings"])
    assert report["settings"]["seed"] == 0 and report["versions"]["anybody"] and report["model"] == "tiny"
    markdown = (out / "report.md").read_text()
    assert "| celeb-basis |" in markdown and "| textual-inversion |" in markdown and "95%" in markdown
    assert "CLIP-T and ID(Prompt) are empty: no CLIP model was given" in markdown
    for text in (markdown, (out / "report.html").read_text()):
        assert "2 DDIM steps" in text and "24 images were drawn in this run." in text and "reused" not in text
    addresses = check_offline(out)
    assert sum(address.startswith("images/") for address in addresses) == 24
    assert "photos/eileen.jpg" in addresses and "photos/mirror.png" in addresses
    identities = sorted((out / "identities").rglob("*.safetensors"))
    assert len(identities) == 4
    drawn = image_files(out)

    settings.clip = str(tiny_clip)
    second = evaluate(settings, progress=False)
    assert second.new_images == 0
    assert image_files(out) == drawn  # not one image drawn or rewritten
    assert "All 24 images were drawn by an earlier run." in (out / "report.md").read_text()
    assert sorted((out / "identities").rglob("*.safetensors")) == identities
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["textual-inversion"]["metrics"]["clip"]["n"] == 12
    assert report["clip"]["empty_because"] is None
    assert all(row["clip"] is not None and row["id_prompt"] is not None for row in report["images"])
    assert "scatter.png" in check_offline(out)


@pytest.mark.parametrize(("steps", "images", "new", "said"), [
    (1, 4, 4, "1 DDIM step, guidance 7.5. Identity scored by `dlib`"),
    (50, 4, 4, "4 images were drawn in this run."),
    (50, 1, 1, "1 image was drawn in this run."),
    (50, 4, 0, "All 4 images were drawn by an earlier run."),
    (50, 1, 0, "The image was drawn by an earlier run."),
    (50, 4, 3, "3 images were drawn in this run; the other 1 was drawn by an earlier run and reused."),
])
def test_the_report_counts_steps_and_reused_images_as_they_are(steps, images, new, said):
    settings = EvaluationSettings(photos="faces", model="tiny", drawing_steps=steps)
    result = EvaluationResult(settings=settings, people=[], prompts=[], rows=[{}] * images, references={},
                              clip_reason="", scorer="dlib", model="tiny", new_images=new)
    text = markdown(result, {}, [])
    assert said in text
    assert ("1 DDIM steps" not in text) and ("reused" in text) == (0 < new < images)
