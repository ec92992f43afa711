"""`anybody basis filter`: a name is kept when the model draws it as one consistent face; the names file it
writes is one `basis --names` and `learn --names` read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from anybody.basis import BasisOptions, build_basis, load_names
from anybody.basis.filter import FilterSettings, NameScore, filter_names, names_file, score_images
from anybody.errors import UsageError
from anybody.evaluation.scoring import FaceScorer
from anybody.face import load_photo
from anybody.interfaces.cli import build_parser
from anybody.interfaces.cli.learn import config_from
from anybody.models.tokenizer import clip_tokenizer


def test_a_name_is_kept_when_most_images_show_one_face():
    assert NameScore("a", 4, 4, 0.3).kept(0.75, 0.6)
    assert NameScore("b", 3, 4, 0.3).kept(0.75, 0.6)
    assert not NameScore("c", 2, 4, 0.3).kept(0.75, 0.6)  # faces in too few images
    assert not NameScore("d", 4, 4, 0.7).kept(0.75, 0.6)  # faces of different people
    assert not NameScore("e", 0, 4, None).kept(0.75, 0.6)


@pytest.mark.slow
def test_real_faces_of_one_person_agree_and_a_faceless_image_counts_against(sample_photo):
    photo = load_photo(sample_photo)
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (200, 1)), "L").convert("RGB")
    score = score_images("Eileen Collins", [photo, ImageOps.mirror(photo), gradient], FaceScorer.named("dlib"))
    assert (score.detected, score.images) == (2, 3)
    assert 0 < score.distance < 0.6
    assert score.kept(0.6, 0.6) and not score.kept(0.75, 0.6)


@pytest.fixture(scope="module")
def tiny_model():
    from anybody.models import load_pipeline

    load_pipeline("tiny", device="cpu")  # built once into ANYBODY_HOME, then loaded by name


@pytest.mark.slow
def test_the_filter_writes_a_names_file_resumes_and_runs_slices(tmp_path, tiny_model):
    names = tmp_path / "some.txt"
    names.write_text("Tom Hanks\nMadonna\nMeryl Streep\n", encoding="utf-8")
    out = tmp_path / "kept.txt"
    settings = FilterSettings(model="tiny", names=str(names), images=2, steps=2, limit=2, out=str(out))
    first = filter_names(settings, progress=False)
    assert [score.name for score in first] == ["Tom Hanks", "Madonna"]
    assert all(score.detected == 0 for score in first)  # the tiny model draws noise: no face, nothing kept
    assert load_names(out) == []
    text = out.read_text()
    assert "# rejected: Tom Hanks: faces in 0/2 images" in text and "Meryl Streep" not in text
    scores = json.loads((tmp_path / "kept.txt.scores.json").read_text())["scores"]
    assert set(scores) == {"Tom Hanks", "Madonna"}

    stamps = (out.stat().st_mtime_ns, (tmp_path / "kept.txt.scores.json").stat().st_mtime_ns)
    again = filter_names(settings, progress=False)
    assert again == first
    assert (out.stat().st_mtime_ns, (tmp_path / "kept.txt.scores.json").stat().st_mtime_ns) == stamps

    settings.offset, settings.limit = 2, None
    rest = filter_names(settings, progress=False)
    assert [score.name for score in rest] == ["Meryl Streep"]
    assert "# rejected: Meryl Streep" in out.read_text() and "# rejected: Tom Hanks" in out.read_text()
    settings.offset = 3
    with pytest.raises(UsageError, match="past the end"):
        filter_names(settings, progress=False)


def test_a_names_file_sets_the_basis_names_for_basis_and_learn(tmp_path):
    path = tmp_path / "kept.txt"
    kept = load_names()[:300]
    path.write_text("# kept by the filter\n" + "\n".join(f"# scores\n{name}" for name in kept) + "\n")
    assert load_names(path) == kept
    table = torch_table()
    from_file = build_basis(clip_tokenizer(), table, options=BasisOptions(names_file=str(path)),
                            cache_folder=tmp_path / "cache")
    given = build_basis(clip_tokenizer(), table, kept, cache_folder=tmp_path / "cache")
    assert from_file.key == given.key and from_file.statistics["names"] == 300
    assert build_basis(clip_tokenizer(), table, cache_folder=tmp_path / "cache").key != given.key

    args = build_parser().parse_args(["learn", "me.jpg", "--name", "me", "--names", str(path)])
    config = config_from(args)
    assert config.basis.names_file == str(path.resolve()) and config.basis.alignment == BasisOptions.alignment
    with pytest.raises(UsageError, match="does not exist"):
        names_file(tmp_path / "missing.txt")


def torch_table():
    import torch

    return torch.randn(49408, 40, generator=torch.Generator().manual_seed(0)) * 0.02
