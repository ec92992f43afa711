"""The models this machine has, and where a named model comes from, on a real Hugging Face cache on disk
(tests/models/hf_cache.py) that huggingface_hub's own scan and look-ups read: offline, nothing mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

from anybody.errors import ModelError
from anybody.models import describe_model, list_models, load_pipeline, locate_model
from anybody.models.tiny import tiny_model_folder
from tests.models.hf_cache import add_repo

ROOT = Path(__file__).resolve().parents[2]


def _fp16_unet_folder(tmp_path: Path) -> Path:
    """The tiny model with its UNet as the fp16 variant alone, as `anybody models download` leaves a pipeline
    for a GPU where the repository has fp16 weights for the UNet only."""
    import shutil

    from diffusers import UNet2DConditionModel

    folder = tmp_path / "tiny-fp16"
    shutil.copytree(tiny_model_folder("tiny"), folder)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    unet.half().save_pretrained(folder / "unet", variant="fp16")
    return folder


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline Hugging Face cache with a whole tiny pipeline, one without its UNet weights, one whose UNet is
    fp16 only, a ControlNet (a diffusers model, not a pipeline) and a transformers model."""
    cache = tmp_path / "hub"
    tiny = tiny_model_folder("tiny")
    add_repo(cache, "fake/tiny", tiny)
    add_repo(cache, "fake/tiny-partial", tiny, keep=lambda name: not name.startswith("unet/diffusion_pytorch_model"))
    add_repo(cache, "fake/tiny-fp16", _fp16_unet_folder(tmp_path))
    controlnet, clip = tmp_path / "controlnet", tmp_path / "clip"
    for folder, config, weights in ((controlnet, {"_class_name": "ControlNetModel", "_diffusers_version": "0.30.0"},
                                     "diffusion_pytorch_model.safetensors"),
                                    (clip, {"architectures": ["CLIPModel"]}, "model.safetensors")):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        (folder / weights).write_bytes(b"\0" * 1000)
    add_repo(cache, "lllyasviel/fake-controlnet", controlnet)
    add_repo(cache, "openai/fake-clip", clip)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # what huggingface_hub read from the environment
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_the_list_holds_the_built_in_models_and_the_cached_diffusers_models_with_what_they_lack(hf_cache):
    entries, others = list_models()
    by_name = {entry.name: entry for entry in entries}
    assert [entry.name for entry in entries][:3] == ["tiny", "tiny-sd2", "tiny-sdxl"]
    assert by_name["tiny-sdxl"].family == "sdxl" and by_name["tiny-sdxl"].source == "built-in"
    whole, partial, fp16 = by_name["fake/tiny"], by_name["fake/tiny-partial"], by_name["fake/tiny-fp16"]
    assert (whole.kind, whole.family, whole.missing, whole.usable) == ("text-to-image", "sd1", [], True)
    assert whole.size_bytes == sum(path.stat().st_size for path in tiny_model_folder("tiny").rglob("*")
                                   if path.is_file())
    assert partial.missing == ["unet weights"] and not partial.usable
    assert partial.size_bytes < whole.size_bytes
    assert fp16.missing == [] and fp16.usable
    controlnet = by_name["lllyasviel/fake-controlnet"]
    assert (controlnet.kind, controlnet.family, controlnet.usable) == ("ControlNetModel", None, False)
    assert "openai/fake-clip" not in by_name and others == 1  # not a diffusers model: counted, not listed


def test_a_cached_pipeline_is_found_and_loaded_offline_under_its_hub_id(hf_cache, tiny_pipe):
    located = locate_model("fake/tiny")
    assert located.kind == "cache" and (located.path / "model_index.json").is_file()
    assert located.path.is_relative_to(hf_cache)
    pipe = load_pipeline("fake/tiny", device="cpu")
    assert describe_model(pipe) == "fake/tiny"
    assert torch.equal(pipe.unet.conv_in.weight, tiny_pipe.unet.conv_in.weight)


def test_a_cached_pipeline_with_fp16_weights_alone_loads(hf_cache, tiny_pipe):
    pipe = load_pipeline("fake/tiny-fp16", device="cpu")
    assert pipe.unet.dtype == torch.float32  # loaded as asked, from the fp16 file
    assert torch.equal(pipe.unet.conv_in.weight, tiny_pipe.unet.conv_in.weight.half().float())
    assert torch.equal(pipe.vae.decoder.conv_out.weight, tiny_pipe.vae.decoder.conv_out.weight)


def test_a_hub_id_that_is_not_here_is_refused_offline_with_the_whole_reason_and_the_command_that_fixes_it(hf_cache):
    with pytest.raises(ModelError) as refused:
        locate_model("nosuch/model")
    message = str(refused.value)
    assert message == (
        f"The model nosuch/model is not on this machine: it is not a file or folder here, nor in the Hugging Face "
        f"cache ({hf_cache}), and the Hub cannot be reached to download it (offline mode is on: HF_HUB_OFFLINE=1). "
        "Download it where you are online: anybody models download nosuch/model (or hf download nosuch/model), "
        "then run again; or pass a local diffusers folder, a .safetensors file, or --model tiny.")


def test_a_cached_pipeline_without_its_weights_is_refused_offline_naming_what_it_lacks(hf_cache):
    with pytest.raises(ModelError, match=r"holds only part of it \(it lacks unet weights\).*"
                                         "anybody models download fake/tiny-partial"):
        locate_model("fake/tiny-partial")


def test_a_cached_model_that_is_not_a_pipeline_is_named_as_what_it_is(hf_cache):
    with pytest.raises(ModelError, match=r"holds it, but not as a diffusers pipeline \(a ControlNetModel\)"):
        locate_model("lllyasviel/fake-controlnet")


@pytest.mark.parametrize("typed, meant", [("tinyy", "tiny"), ("Tiny", "tiny"), ("tiny-sdx", "tiny-sdxl"),
                                          ("fake/tinyy", "fake/tiny"), ("Fake/Tiny", "fake/tiny")])
def test_a_name_close_to_a_built_in_or_cached_model_gets_did_you_mean(hf_cache, typed, meant):
    with pytest.raises(ModelError, match=f"Did you mean {meant}\\? A model from the Hub is fetched where you are "
                                         "online with: anybody models download ID"):
        locate_model(typed)


def test_no_suggestion_for_a_name_close_to_nothing_nor_of_an_incomplete_pipeline(hf_cache):
    for typed in ("nosuch/model", "fake/tiny-partia"):
        with pytest.raises(ModelError) as refused:
            locate_model(typed)
        assert "Did you mean" not in str(refused.value)


def test_local_paths_are_checked_before_anything_is_loaded(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "empty").mkdir()
    for path, problem in ((tmp_path / "missing.safetensors", "does not exist"), (tmp_path / "empty", "no model_index"),
                          (tmp_path / "notes.txt", "not a model file anybody can read")):
        with pytest.raises(ModelError, match=problem):
            locate_model(path)
    with pytest.raises(ModelError, match="neither a file or folder here nor a Hub id"):
        locate_model("models/sd15/unet")
    assert locate_model(tiny_model_folder("tiny")).kind == "folder"
    assert locate_model("tiny-sdxl-inpaint").kind == "tiny"


def _cli(argv: list[str], **variables: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    environment.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **variables)
    return subprocess.run([sys.executable, "-m", "anybody", *argv], capture_output=True, text=True, env=environment,
                          timeout=120, check=False)


def test_anybody_models_reads_the_cache_hf_hub_cache_names(hf_cache):
    listed = _cli(["models", "--json"], HF_HUB_CACHE=str(hf_cache))
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["cache"] == str(hf_cache) and report["other_models_in_cache"] == 1
    by_name = {entry["name"]: entry for entry in report["models"]}
    assert by_name["fake/tiny"]["usable"] and by_name["fake/tiny"]["family"] == "sd1"
    assert by_name["fake/tiny-partial"]["missing"] == ["unet weights"]
    table = _cli(["models"], HF_HUB_CACHE=str(hf_cache)).stdout.splitlines()
    assert table[0].split() == ["model", "family", "size", "files"]
    partial = next(line for line in table if line.startswith("fake/tiny-partial "))
    assert "SD 1.x" in partial and "missing unet weights (anybody models download fake/tiny-partial)" in partial
    assert "not a text-to-image pipeline (ControlNetModel)" in next(line for line in table if "controlnet" in line)


def test_anybody_models_reads_the_cache_under_hf_home(hf_cache):
    home = hf_cache.parent  # the cache is HF_HOME/hub
    listed = _cli(["models", "--json"], HF_HOME=str(home))
    assert json.loads(listed.stdout)["cache"] == str(hf_cache)
    assert "fake/tiny" in {entry["name"] for entry in json.loads(listed.stdout)["models"]}
