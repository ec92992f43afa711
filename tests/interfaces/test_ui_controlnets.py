"""`anybody ui --controlnet`: the ControlNets the Draw tab offers besides the cached ones are checked at start, before
anything is loaded: a folder or file here, a Hub id in the Hugging Face cache (the app never downloads), tiny only
with a built-in model. (The refusals' lines: the bad-input table, docs/errors.md.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anybody.errors import ModelError
from anybody.interfaces.cli.ui import locate_controlnet
from tests.models.hf_cache import add_repo


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ControlNet in an offline Hugging Face cache (its config is all that is read at start)."""
    from huggingface_hub import constants

    folder = tmp_path / "controlnet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", "_diffusers_version": "0.30.0"}))
    add_repo(tmp_path / "hub", "someone/controlnet-canny", folder)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return "someone/controlnet-canny"


def test_a_folder_here_a_cached_hub_id_and_tiny_with_a_tiny_model_are_taken(cached: str, tmp_path: Path):
    for name, model in ((str(tmp_path / "controlnet"), "some/model"), (cached, "some/model"), ("tiny", "tiny-sdxl")):
        locate_controlnet(name, model)


@pytest.mark.parametrize(("name", "model", "refusal"), [
    ("someone/not-cached", "tiny", "is not on this machine, and the app does not download"),
    ("./nowhere", "tiny", "The ControlNet ./nowhere does not exist"),
    ("not a name", "tiny", "is neither a file or folder here nor a Hub id"),
    ("tiny", "some/model", "The tiny ControlNet has random weights"),
])
def test_what_the_app_could_not_load_is_refused_at_start(cached: str, name: str, model: str, refusal: str):
    with pytest.raises(ModelError, match=refusal):
        locate_controlnet(name, model)
