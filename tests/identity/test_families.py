"""An identity's family from its token widths, and the model that draws it when none is named."""

from __future__ import annotations

import logging

import pytest

from anybody import settings
from anybody.errors import UsageError
from anybody.identity.families import drawing_model, family_from_widths, family_of, known


@pytest.mark.parametrize(("widths", "family"), [
    ((768,), "sd1"), ((1024,), "sd2"), ((768, 1280), "sdxl"),
    ((32,), None), ((1280,), None), ((1024, 1280), None), ((1280, 768), None), ((), None),
])
def test_the_family_follows_from_the_text_encoder_widths(widths, family):
    assert family_from_widths(widths) == family


@pytest.mark.parametrize("value", [None, "", "unknown", 3, ["sd1"]])
def test_what_files_recorded_for_nobody_knows_is_not_known(value):
    assert known(value) is None


def test_a_recorded_family_wins_over_the_widths_and_unknown_falls_back_to_them():
    assert family_of({"family": "sd2"}, [768]) == "sd2"
    assert family_of({"family": "unknown"}, [768]) == "sd1"
    assert family_of({}, [32]) is None


def test_the_identity_s_own_model_comes_first(monkeypatch):
    monkeypatch.setenv("ANYBODY_MODEL", "my/model")
    imported = ("imp", {"base_model": "unknown"}, [768])
    learned = ("alice", {"base_model": "tiny", "family": "sd1"}, [32])
    assert drawing_model([imported, learned]) == "tiny"


def test_an_identity_naming_no_model_is_drawn_with_anybody_model_else_its_family_s(monkeypatch, anybody_log):
    anybody_log.set_level(logging.INFO, logger="anybody")  # what the command line prints as INFO: lines
    for widths, family in (([768], "sd1"), ([1024], "sd2"), ([768, 1280], "sdxl")):
        assert drawing_model([("imp", {"method": "imported"}, widths)]) == settings.FAMILY_MODELS[family]
    assert "imp does not say which model it was made for: drawing with the SD 2.x model " \
           "stabilityai/stable-diffusion-2-1 (--model chooses another)" in anybody_log.text
    monkeypatch.setenv("ANYBODY_MODEL", "tiny")
    assert drawing_model([("imp", {}, [32])]) == "tiny"
    assert "drawing with ANYBODY_MODEL, tiny" in anybody_log.text


def test_without_a_model_or_a_known_family_the_one_line_says_model_is_needed():
    with pytest.raises(UsageError, match=r"^The identity imp does not say which model it was made for, and its "
                                         r"32-wide tokens fit no model family anybody knows \(SD 1.x 768, SD 2.x 1024, "
                                         r"SDXL 768 and 1280\)\. Pass --model with a model whose text encoder is 32 "
                                         r"wide, or set ANYBODY_MODEL\.$"):
        drawing_model([("imp", {"base_model": "unknown", "family": "unknown"}, [32])])
