"""Regions through generate, attention and the command line: every cross-attention layer of whichever pipeline
draws (the plain one, or the inpainting, img2img and ControlNet pipelines made with from_pipe, which share its
UNet) keeps each identity in its region, on every family and for every method; a region over the whole picture
draws what no region draws; the PNGs record the regions; bad regions are refused before anything loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from anybody.attention import RegionMasks, cross_attention_layers
from anybody.errors import UsageError
from anybody.generation import generate
from anybody.interfaces.cli import main
from tests.generation.pictures import picture_and_mask
from tests.generation.test_control import identity
from tests.interfaces.test_startup import _library, _start

FAMILIES = ("tiny", "tiny-sd2", "tiny-sdxl")
METHODS = ("celeb-basis", "sefi", "textual-inversion", "imported")


@pytest.fixture
def bias_calls(monkeypatch) -> list[tuple[int, int]]:
    """(query pixels, batch) of every layer call that took the regions' bias (the real bias, only watched)."""
    calls: list[tuple[int, int]] = []
    real = RegionMasks.bias

    def watched(self, pixels, batch, tokens, dtype, device):
        calls.append((pixels, batch))
        return real(self, pixels, batch, tokens, dtype, device)

    monkeypatch.setattr(RegionMasks, "bias", watched)
    return calls


@pytest.fixture
def scene(tmp_path):
    """A 192 x 128 picture with a mask whose white is a box in its middle."""
    return picture_and_mask(tmp_path, "scene", (192, 128), (60, 30, 140, 100), seed=1)


TASKS = {
    "text": lambda scene: {},
    "inpaint": lambda scene: {"image": scene[0], "mask": scene[1]},
    "img2img": lambda scene: {"image": scene[0], "strength": 0.8},
    "controlnet": lambda scene: {"control_image": scene[0], "controlnet": "tiny"},
}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", FAMILIES)
def test_every_cross_attention_layer_of_the_pipeline_that_draws_keeps_the_regions(tiny_pipeline, model, task, scene,
                                                                                  bias_calls, tmp_path):
    pipe = tiny_pipeline(model)
    alice = identity(pipe, "sefi", tmp_path)  # SeFi: its stage switch, the regions and from_pipe together
    calls = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        drawn = generate("a photo of alice", alice, pipe, regions={"alice": "left"}, num_images_per_prompt=1,
                         num_inference_steps=2, progress=False, **TASKS[task](scene)).images[0]
    finally:
        hook.remove()
    layers = len(cross_attention_layers(pipe.unet))
    assert calls and len(bias_calls) == len(calls) * layers  # every layer, at every step
    assert {batch for _, batch in bias_calls} == {2}  # one image, under guidance
    if task == "inpaint":  # still every pixel outside the mask is the picture's own
        _, _, picture, mask = scene
        assert np.array_equal(np.asarray(drawn)[mask == 0], picture[mask == 0])
    # Afterwards the regions are gone: no processor keeps them, no hook reads the latent size.
    assert all(getattr(getattr(processor, "store", None), "regions", None) is None
               for processor in pipe.unet.attn_processors.values())
    assert not any("read_latent" in hook.__qualname__ for hook in pipe.unet._forward_pre_hooks.values())


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=int)


@pytest.mark.parametrize("method", METHODS)
def test_two_people_each_in_their_place_for_every_method(tiny_pipe, method, tmp_path):
    alice = identity(tiny_pipe, method, tmp_path)
    bob = identity(tiny_pipe, method, tmp_path, name="bob", sign=-1.0)
    common = {"num_images_per_prompt": 1, "num_inference_steps": 3, "progress": False}
    prompt = "alice and bob shaking hands"
    free = generate(prompt, [alice, bob], tiny_pipe, **common).images[0]
    placed = generate(prompt, [alice, bob], tiny_pipe, regions={"alice": "left", "bob": "right"},
                      out_dir=tmp_path / "out", **common)
    everywhere = generate(prompt, [alice, bob], tiny_pipe, regions={"alice": (0, 0, 1, 1), "bob": "0,0,1,1"},
                          **common).images[0]
    assert np.abs(_pixels(everywhere) - _pixels(free)).max() <= 2  # a region over the whole picture: no change
    assert np.abs(_pixels(placed.images[0]) - _pixels(free)).mean() > 1  # the regions change the picture
    details = json.loads(Image.open(placed.paths[0]).text["anybody"])
    assert details["regions"] == {"alice": "left", "bob": "right"}
    assert 'Regions: "alice=left; bob=right"' in Image.open(placed.paths[0]).text["parameters"]


def test_a_region_for_someone_not_drawn_is_refused_before_the_model_loads(tiny_pipe, tmp_path):
    alice = identity(tiny_pipe, "celeb-basis", tmp_path)
    with pytest.raises(UsageError, match="region for bob, who is not drawn"):
        generate("a photo of alice", alice, str(tmp_path / "no-such-model"), regions={"bob": "left"})
    with pytest.raises(UsageError, match="reaches outside the picture"):
        generate("a photo of alice", alice, str(tmp_path / "no-such-model"), regions={"alice": (0, 0, 2, 1)})


@pytest.fixture
def library(tiny_pipe, tmp_path):
    alice = identity(tiny_pipe, "celeb-basis", tmp_path)
    alice.metadata.update(base_model="tiny", family="sd1")
    alice.save(library=tmp_path / "lib")
    return tmp_path / "lib"


@pytest.mark.slow
def test_generate_and_attention_take_regions_on_the_command_line(library, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "alice on a bench", "--identity", "alice", "--library", str(library), "--region",
                 "alice=0.1,0.2,0.6,1", "-n", "1", "--steps", "2", "--out", str(out)]) == 0
    assert json.loads(Image.open(out / "00-seed42.png").text["anybody"])["regions"] == {"alice": "0.1,0.2,0.6,1"}
    sheet = tmp_path / "attention.png"
    assert main(["attention", "alice on a bench", "--identity", "alice", "--library", str(library), "--region",
                 "alice=right", "--steps", "2", "--out", str(sheet)]) == 0
    assert str(sheet) in capsys.readouterr().out
    free = tmp_path / "free.png"
    assert main(["attention", "alice on a bench", "--identity", "alice", "--library", str(library), "--steps", "2",
                 "--out", str(free)]) == 0
    with Image.open(sheet) as placed, Image.open(free) as unplaced:
        assert placed.size == unplaced.size
        difference = np.abs(_pixels(placed) - _pixels(unplaced)).max(axis=-1)
    assert difference.any()  # drawn with the region, and its outline on alice's tile


@pytest.mark.parametrize("argv", [
    ["generate", "a photo of alice", "--region", "alice=2,0,3,1"],
    ["generate", "a photo of alice", "--region", "left"],
    ["attention", "a photo of alice", "--region", "alice=middle"],
    ["generate", "a photo of alice", "--identity", "alice", "--library", "lib", "--region", "bob=left"],
], ids=["outside the picture", "no name", "no place", "not drawn"])
def test_region_refusals_come_before_torch_or_any_model_library_is_imported(tmp_path, argv):
    _library(tmp_path)
    assert _start(argv, tmp_path) == (2, [])
