"""`anybody models download` and the online side of `--model ID`, against a Hub served from folders on
127.0.0.1 (tests/models/fake_hub.py): huggingface_hub's real requests, downloads, resuming and cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

from anybody.errors import ModelError
from anybody.models import load_pipeline
from anybody.models.catalog import locate_model
from anybody.models.download import runs_in_half
from anybody.models.pipelines import folder_files, pipeline_files, read_index
from anybody.models.tiny import tiny_model_folder
from tests.models.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[2]
UNET_FP16 = "unet/diffusion_pytorch_model.fp16.safetensors"
VAE_FP16 = "vae/diffusion_pytorch_model.fp16.safetensors"


def _hub_repository(folder: Path) -> Path:
    """The tiny pipeline as a Hub repository holds one: full and fp16 weights, a non_ema UNet and a .bin twin, a
    safety checker, a whole-model checkpoint and a picture at the root."""
    from diffusers import DiffusionPipeline

    shutil.copytree(tiny_model_folder("tiny"), folder)
    DiffusionPipeline.from_pretrained(folder).to(torch.float16).save_pretrained(folder, variant="fp16")
    shutil.copy(folder / "unet" / "diffusion_pytorch_model.safetensors",
                folder / "unet" / "diffusion_pytorch_model.non_ema.safetensors")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"a pickle nobody should fetch")
    (folder / "safety_checker").mkdir()
    (folder / "safety_checker" / "config.json").write_text("{}")
    (folder / "safety_checker" / "model.safetensors").write_bytes(b"\0" * 64)
    (folder / "v1-5-pruned-emaonly.ckpt").write_bytes(b"\0" * 4096)
    (folder / "v1-variants-scores.jpg").write_bytes(b"\xff\xd8\xff")
    index = read_index(folder)
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


@pytest.fixture
def hub(tmp_path: Path) -> FakeHub:
    controlnet = tmp_path / "controlnet"
    controlnet.mkdir()
    (controlnet / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
    (controlnet / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)
    with FakeHub({"fake/sd": _hub_repository(tmp_path / "sd"), "fake/controlnet": controlnet}).serving() as hub:
        yield hub


def _download(hub: FakeHub, cache: Path, *argv: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    environment.update(PYTHONPATH=str(ROOT), HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(cache), NO_PROXY="127.0.0.1")
    return subprocess.run([sys.executable, "-m", "anybody", "models", "download", *argv], capture_output=True,
                          text=True, env=environment, timeout=300, check=False)


@pytest.mark.slow
def test_a_download_fetches_only_what_the_pipeline_loads_keeps_what_it_finished_and_loads_offline(
        hub, tmp_path, monkeypatch, tiny_pipe):
    cache = tmp_path / "cache"
    repository = hub.repos["fake/sd"]
    hub.breaks[UNET_FP16] = 100  # the connection keeps dropping in the middle of the UNet
    stopped = _download(hub, cache, "fake/sd", "--dtype", "fp16")
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]  # after the bars
    assert stopped.returncode == 2 and len(errors) == 1 and "Traceback" not in stopped.stderr
    assert errors[0].startswith("error: The download of fake/sd stopped (")
    assert errors[0].endswith("Run the same command again: it fetches only what is still missing.")
    snapshot = cache / "models--fake--sd" / "snapshots" / hub.commits["fake/sd"]
    finished = folder_files(snapshot)
    assert finished and UNET_FP16 not in finished

    hub.sent.clear()
    hub.breaks = {VAE_FP16: 1} if VAE_FP16 not in finished else {}  # once more, a drop the retry gets over
    done = _download(hub, cache, "fake/sd", "--dtype", "fp16")
    assert done.returncode == 0, done.stderr
    assert "SD 1.x text-to-image pipeline, fp16 weights" in done.stdout
    assert "Next: anybody learn PHOTO --name NAME --model fake/sd" in done.stdout
    assert "%|" in done.stderr  # huggingface_hub's progress bars, though the CLI quiets the libraries
    fetched = {request.split()[1] for request in hub.sent}
    assert UNET_FP16 in fetched and not fetched & set(finished)  # what the first run finished is kept

    chosen = pipeline_files(hub.files("fake/sd"), read_index(repository), half=True).files
    assert folder_files(snapshot) == sorted(chosen)
    assert all((snapshot / name).read_bytes() == (repository / name).read_bytes() for name in chosen)
    assert not [name for name in folder_files(snapshot) if name.endswith((".ckpt", ".jpg", ".bin"))
                or "non_ema" in name or name.startswith("safety_checker")]

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = load_pipeline("fake/sd", device="cpu")  # from the cache, fp16 files, no network
    assert torch.equal(pipe.unet.conv_in.weight, tiny_pipe.unet.conv_in.weight.half().float())

    hub.sent.clear()
    again = _download(hub, cache, "fake/sd", "--dtype", "fp16")
    assert again.returncode == 0, again.stderr
    assert hub.sent == []  # all there already: nothing fetched twice


def test_in_full_precision_the_full_weights_are_fetched(hub, tmp_path):
    done = _download(hub, tmp_path / "cache", "fake/sd", "--dtype", "fp32")
    assert done.returncode == 0, done.stderr
    assert "full-precision weights" in done.stdout
    fetched = {request.split()[1] for request in hub.sent}
    assert "unet/diffusion_pytorch_model.safetensors" in fetched and UNET_FP16 not in fetched


def test_what_the_hub_does_not_have_or_cannot_be_drawn_with_is_refused_before_any_download(hub, tmp_path):
    missing = _download(hub, tmp_path / "cache", "nosuch/model")
    assert missing.returncode == 2 and missing.stderr.startswith(
        "error: The Hugging Face Hub has no model nosuch/model (or it is private, and this machine is not logged in)")
    controlnet = _download(hub, tmp_path / "cache", "fake/controlnet")
    assert controlnet.returncode == 2
    assert "is not a diffusers pipeline (it has no model_index.json)" in controlnet.stderr
    assert hub.sent == []


def test_online_an_id_the_hub_has_is_left_to_diffusers_and_one_it_lacks_is_refused(hub, monkeypatch, tmp_path):
    """A real user online keeps diffusers' download; a wrong id is refused on the Hub's word, before torch."""
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert locate_model("fake/sd").kind == "hub"
    with pytest.raises(ModelError, match=r"The Hugging Face Hub has no model fake/sdd .*Check the name"):
        locate_model("fake/sdd")
    with pytest.raises(ModelError, match="not a diffusers pipeline"):
        locate_model("fake/controlnet")
    with pytest.raises(ModelError, match="Did you mean tiny\\? If it is private, log in with hf auth login"):
        locate_model("Tiny")  # a valid Hub id the Hub does not have, close to a built-in name


def test_the_precision_to_fetch_for_is_the_one_the_model_will_run_in():
    assert runs_in_half("fp16") and runs_in_half("bf16") and not runs_in_half("fp32")
    gpu = torch.cuda.is_available() or torch.backends.mps.is_available()
    assert runs_in_half(None) == gpu  # what load_pipeline picks here: half on a GPU, fp32 on a CPU
