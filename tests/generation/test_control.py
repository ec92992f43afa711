"""Drawing into a picture and in a pose, on every tiny family and for every method: inpainting keeps every
pixel outside the mask, img2img runs `strength` of the steps, a ControlNet steers (and at scale 0 does
nothing), a ControlNet of another family is refused before drawing, and the PNGs say what was used."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from anybody.errors import UsageError
from anybody.generation import generate
from anybody.generation.control import draw_size
from anybody.identity import Identity
from anybody.identity.readers import import_embedding
from anybody.interfaces.cli import main
from anybody.models import text_encoders
from anybody.models.tiny import build_tiny_controlnet
from tests.generation.pictures import picture_and_mask

FAMILIES = ("tiny", "tiny-sd2", "tiny-sdxl")
METHODS = ("celeb-basis", "sefi", "textual-inversion", "imported")
STEPS = 3


def identity(pipe, method: str, tmp_path, name: str = "alice", sign: float = 1.0) -> Identity:
    """An identity as each method leaves it (`sign` -1 gives another person of the same shape): Celeb Basis
    two tokens, Textual Inversion one, SeFi five stages of key and value tokens, imported read from a file."""
    generator = torch.Generator().manual_seed(7)
    widths = {encoder: module.get_input_embeddings().weight.shape[1] for encoder, _, module in text_encoders(pipe)}
    tokens = 1 if method == "textual-inversion" else 2
    rows = {encoder: sign * 0.1 * torch.randn(tokens, width, generator=generator) for encoder, width in widths.items()}
    if method == "imported":  # AUTOMATIC1111's file, read by the importer
        path = tmp_path / f"{name}-{sign}.safetensors"
        keys = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"} if len(widths) == 2 else \
            {"text_encoder": "emb_params"}
        save_file({keys[encoder]: value for encoder, value in rows.items()}, path)
        return import_embedding(path, name, model_width=widths)
    if method == "sefi":
        keys, values = ({encoder: sign * 0.1 * torch.randn(5, 1, width, generator=generator)
                         for encoder, width in widths.items()} for _ in range(2))
        return Identity(name, {encoder: value.mean(0) for encoder, value in values.items()},
                        metadata={"method": "sefi"}, stage_keys=keys, stage_values=values)
    return Identity(name, rows, metadata={"method": method})


@pytest.fixture
def room(tmp_path):
    """A 300 x 200 picture (not the model's shape) and a mask whose white is a small box in it."""
    return picture_and_mask(tmp_path, "room", (300, 200), (120, 60, 170, 110), seed=0)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", FAMILIES)
def test_inpainting_redraws_the_white_of_the_mask_with_the_identity_and_keeps_every_other_pixel(
        tiny_pipeline, model, method, room, tmp_path):
    pipe = tiny_pipeline(model)
    picture_path, mask_path, picture, mask = room
    common = {"image": picture_path, "mask": mask_path, "num_images_per_prompt": 1, "num_inference_steps": STEPS,
              "progress": False}
    drawn = generate("a photo of alice", identity(pipe, method, tmp_path), pipe, **common).images[0]
    # SeFi's other person keeps its mean token and loses its stages: what differs is the stage switch's work
    other = identity(pipe, method, tmp_path, sign=-1.0)
    if method == "sefi":
        other = identity(pipe, method, tmp_path)
        other.stage_keys, other.stage_values = {}, {}
    drawn_other = generate("a photo of alice", other, pipe, **common).images[0]
    assert drawn.size == (300, 200)
    assert np.array_equal(np.asarray(drawn)[mask == 0], picture[mask == 0])
    inside = mask == 255
    assert np.abs(_pixels(drawn)[inside] - picture[inside]).mean() > 10  # the box was drawn anew
    assert np.abs(_pixels(drawn)[inside] - _pixels(drawn_other)[inside]).mean() > 1  # by this identity


@pytest.mark.parametrize("model", ["tiny-inpaint", "tiny-sd2-inpaint", "tiny-sdxl-inpaint"])
def test_inpainting_models_with_a_nine_channel_unet_draw_into_the_mask_and_nothing_else(tiny_pipeline, model,
                                                                                         room, tmp_path):
    pipe = tiny_pipeline(model)
    assert pipe.unet.config.in_channels == 9
    picture_path, mask_path, picture, mask = room
    alice = identity(pipe, "celeb-basis", tmp_path)
    channels = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: channels.append(args[0].shape[1]))
    try:
        drawn = generate("a photo of alice", alice, pipe, image=picture_path, mask=mask_path, num_images_per_prompt=1,
                         num_inference_steps=STEPS, progress=False).images[0]
    finally:
        hook.remove()
    assert set(channels) == {9}
    assert np.array_equal(np.asarray(drawn)[mask == 0], picture[mask == 0])
    with pytest.raises(UsageError, match=r"inpainting model .* Pass --image and --mask"):
        generate("a photo of alice", alice, pipe, image=picture_path, num_inference_steps=STEPS)
    with pytest.raises(UsageError, match="inpainting model"):
        generate("a photo of alice", alice, pipe, num_inference_steps=STEPS)


def test_the_inpainting_variants_share_the_text_encoders_so_identities_fit_both(tiny_pipeline):
    plain, inpainting = tiny_pipeline("tiny-sdxl"), tiny_pipeline("tiny-sdxl-inpaint")
    for (_, _, a), (_, _, b) in zip(text_encoders(plain), text_encoders(inpainting)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_only_the_masks_box_is_drawn_at_the_models_size_in_its_proportions(tiny_pipe, room, tmp_path):
    picture_path, mask_path, _, _ = room
    latents = []
    hook = tiny_pipe.unet.register_forward_pre_hook(lambda module, args: latents.append(tuple(args[0].shape[2:])))
    try:
        generate("a photo of alice", identity(tiny_pipe, "celeb-basis", tmp_path), tiny_pipe, image=picture_path,
                 mask=mask_path, num_images_per_prompt=1, num_inference_steps=1, progress=False)
    finally:
        hook.remove()
    side = tiny_pipe.unet.config.sample_size  # the box is 50 x 50 plus 32 px around: square, drawn at 128 px
    assert set(latents) == {(side, side)}
    assert draw_size(tiny_pipe, (300, 200), None, None) == (104, 160)
    assert draw_size(tiny_pipe, (300, 200), 64, None) == (64, 96)


@pytest.mark.parametrize("model", FAMILIES)
def test_img2img_runs_strength_of_the_steps_from_the_picture(tiny_pipeline, model, room, tmp_path):
    pipe = tiny_pipeline(model)
    alice = identity(pipe, "celeb-basis", tmp_path)
    calls = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(tuple(args[0].shape)))
    try:
        drawn = generate("a photo of alice", alice, pipe, image=room[0], strength=0.5, num_images_per_prompt=1,
                         num_inference_steps=6, progress=False).images[0]
    finally:
        hook.remove()
    assert len(calls) == 3 and drawn.size == (160, 104)  # half of 6 steps; 300 x 200's shape at the model's size
    starts = {}  # the latents of the first step: the picture's, part noised (a random VAE decodes all alike)
    for colour in ("black", "white"):
        def first(module, args, colour=colour) -> None:
            starts.setdefault(colour, args[0][0].clone())

        hook = pipe.unet.register_forward_pre_hook(first)
        try:
            generate("a photo of alice", alice, pipe, image=Image.new("RGB", (300, 200), colour), strength=0.5,
                     num_images_per_prompt=1, num_inference_steps=6, progress=False)
        finally:
            hook.remove()
    black, white = starts["black"], starts["white"]
    assert (black - white).abs().mean() > 1e-3  # drawn from the picture, not noise alone (float noise: 1e-7)


@pytest.mark.parametrize("model", FAMILIES)
def test_a_controlnet_steers_the_picture_and_at_scale_0_changes_nothing(tiny_pipeline, model, room, tmp_path):
    pipe = tiny_pipeline(model)
    picture_path = room[0]
    alice = identity(pipe, "sefi", tmp_path)
    common = {"num_images_per_prompt": 1, "num_inference_steps": STEPS, "progress": False, "height": 64, "width": 96}
    plain = generate("a photo of alice", alice, pipe, **common).images[0]
    steered = generate("a photo of alice", alice, pipe, control_image=picture_path, controlnet="tiny",
                       **common).images[0]
    unsteered = generate("a photo of alice", alice, pipe, control_image=picture_path, controlnet="tiny",
                         control_scale=0.0, **common).images[0]
    assert np.abs(_pixels(plain) - _pixels(steered)).mean() > 5
    assert np.abs(_pixels(plain) - _pixels(unsteered)).max() <= 2  # float rounding only


def test_the_tiny_controlnet_is_the_same_from_the_same_seed_and_leaves_the_random_state_alone(tiny_pipe):
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    first = build_tiny_controlnet(tiny_pipe)
    assert torch.equal(torch.rand(1), expected)
    second = build_tiny_controlnet(tiny_pipe)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert first.controlnet_mid_block.weight.abs().sum() > 0  # not zero as training starts it: it steers


@pytest.mark.parametrize(("controlnet_for", "model"), [("tiny-sd2", "tiny"), ("tiny", "tiny-sdxl"),
                                                       ("tiny-sdxl", "tiny-sd2")])
def test_a_controlnet_of_another_family_is_refused_before_anything_is_drawn(tiny_pipeline, controlnet_for, model,
                                                                             room, tmp_path):
    pipe = tiny_pipeline(model)
    folder = tmp_path / "controlnet"
    build_tiny_controlnet(tiny_pipeline(controlnet_for)).save_pretrained(folder)
    calls = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        with pytest.raises(UsageError, match=r"ControlNet .* was made for .*; this SD.* model has width"):
            generate("a photo", (), pipe, control_image=room[0], controlnet=str(folder), num_inference_steps=1)
    finally:
        hook.remove()
    assert calls == []


def test_a_controlnet_folder_of_the_same_family_is_loaded_and_used(tiny_pipe, room, tmp_path):
    folder = tmp_path / "controlnet"
    build_tiny_controlnet(tiny_pipe).save_pretrained(folder)
    common = {"num_images_per_prompt": 1, "num_inference_steps": STEPS, "progress": False, "control_image": room[0]}
    from_folder = generate("a photo", (), tiny_pipe, controlnet=str(folder), **common).images[0]
    built = generate("a photo", (), tiny_pipe, controlnet="tiny", **common).images[0]
    assert np.abs(_pixels(from_folder) - _pixels(built)).max() <= 2


def test_controlnet_inpainting_and_img2img_combine(tiny_pipe, room, tmp_path):
    picture_path, mask_path, picture, mask = room
    alice = identity(tiny_pipe, "celeb-basis", tmp_path)
    common = {"num_images_per_prompt": 1, "num_inference_steps": 4, "progress": False, "controlnet": "tiny",
              "control_image": picture_path, "control_kind": "canny"}
    inpainted = generate("a photo of alice", alice, tiny_pipe, image=picture_path, mask=mask_path, **common).images[0]
    assert np.array_equal(np.asarray(inpainted)[mask == 0], picture[mask == 0])
    redrawn = generate("a photo of alice", alice, tiny_pipe, image=picture_path, strength=0.5, **common).images[0]
    assert redrawn.size == (160, 104)


def test_each_png_records_the_files_by_name_and_hash_and_the_settings(tiny_pipe, room, tmp_path):
    picture_path, mask_path, _, _ = room
    result = generate("a photo of alice", identity(tiny_pipe, "celeb-basis", tmp_path), tiny_pipe,
                      image=picture_path, mask=mask_path, strength=0.8, control_image=picture_path,
                      control_kind="canny", controlnet="tiny", control_scale=0.5, num_images_per_prompt=1,
                      num_inference_steps=STEPS, progress=False, out_dir=tmp_path / "out")
    text = Image.open(result.paths[0]).text
    details = json.loads(text["anybody"])
    picture_hash = hashlib.sha256(picture_path.read_bytes()).hexdigest()
    assert details["image"] == {"file": "room.png", "sha256": picture_hash}
    assert details["mask"] == {"file": "mask.png", "sha256": hashlib.sha256(mask_path.read_bytes()).hexdigest()}
    assert details["control"] == {"file": "room.png", "sha256": picture_hash}
    assert details["strength"] == 0.8 and details["control_scale"] == 0.5
    assert details["controlnet"] == "tiny" and details["control_kind"] == "canny"
    assert f"Denoising strength: 0.8, Init image: room.png [{picture_hash[:10]}]" in text["parameters"]
    assert 'ControlNet 0: "Module: canny, Model: tiny, Weight: 0.5' in text["parameters"]
    edges = np.asarray(Image.open(tmp_path / "out" / "control.png"))  # the edges the ControlNet was shown
    assert set(np.unique(edges)) <= {0, 255} and (edges == 255).any()


def test_the_progress_bar_counts_the_steps_img2img_takes(tiny_pipe, room, tmp_path, capsys):
    generate("a photo of alice", identity(tiny_pipe, "celeb-basis", tmp_path), tiny_pipe, image=room[0],
             strength=0.5, num_images_per_prompt=1, num_inference_steps=4)
    assert "2/2" in capsys.readouterr().err


def test_the_command_line_inpaints_through_the_same_path(tiny_pipe, room, tmp_path, monkeypatch, capsys):
    _, _, picture, mask = room
    identity(tiny_pipe, "celeb-basis", tmp_path).save(library=tmp_path / "lib")
    monkeypatch.chdir(tmp_path)
    code = main(["generate", "a photo of alice", "--identity", "alice", "--library", "lib", "--model", "tiny",
                 "--image", "room.png", "--mask", "mask.png", "--steps", "2", "-n", "1", "--out", "out"])
    assert code == 0, capsys.readouterr().err
    saved = np.asarray(Image.open(tmp_path / "out" / "00-seed42.png"))
    assert np.array_equal(saved[mask == 0], picture[mask == 0])
    assert json.loads(Image.open(tmp_path / "out" / "00-seed42.png").text["anybody"])["mask"]["file"] == "mask.png"
