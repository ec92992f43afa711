"""Generation on the tiny model: identities in prompts, repeatable seeds, PNG metadata, clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from anybody.errors import IdentityError, UsageError
from anybody.generation import apply, generate
from anybody.identity import Identity


def _identity(pipe, name: str = "alice") -> Identity:
    width = pipe.text_encoder.config.hidden_size
    generator = torch.Generator().manual_seed(7)
    return Identity(name=name, encoder_embeddings={"text_encoder": torch.randn(2, width, generator=generator)},
                    metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"})


def test_a_seed_gives_the_same_images_and_each_image_its_own_seed(tiny_pipe):
    alice = _identity(tiny_pipe)
    kwargs = {"num_inference_steps": 3, "seed": 5}
    first = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=2, **kwargs)
    again = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=2, **kwargs)
    assert first.seeds == [5, 6]
    for a, b in zip(first.images, again.images):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(first.images[1]))
    second_alone = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3,
                            seed=6)
    difference = np.abs(np.asarray(second_alone.images[0], dtype=int) - np.asarray(first.images[1], dtype=int))
    assert difference.max() <= 2  # the same picture; a batch of one rounds a little differently on the CPU


def test_many_images_are_drawn_a_batch_at_a_time_with_the_same_pictures(tiny_pipe):
    alice = _identity(tiny_pipe)
    calls = []
    hook = tiny_pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    try:
        batched = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=5, num_inference_steps=2,
                           batch_size=2, seed=3)
    finally:
        hook.remove()
    assert set(calls) == {4, 2} and calls.count(2) == 2  # 2 + 2 + 1 images, each with its unconditional half
    assert batched.seeds == [3, 4, 5, 6, 7] and len(batched.images) == 5
    at_once = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=5, num_inference_steps=2,
                       batch_size=5, seed=3)
    for a, b in zip(batched.images, at_once.images):
        assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 2  # batch rounding only


def test_a_progress_bar_counts_every_denoising_step_of_every_image_unless_asked_not_to(tiny_pipe, capsys):
    alice = _identity(tiny_pipe)
    generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=3, num_inference_steps=2, batch_size=2)
    shown = capsys.readouterr().err
    assert "Drawing 3 images" in shown and "4/4" in shown  # two batches of two denoising steps each
    generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=1, num_inference_steps=2, progress=False)
    assert capsys.readouterr().err == ""


def test_the_identity_changes_the_picture(tiny_pipe):
    alice, other = _identity(tiny_pipe), _identity(tiny_pipe)
    other.encoder_embeddings["text_encoder"] = other.embeddings * -1
    image = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3).images[0]
    changed = generate("a photo of alice", other, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3).images[0]
    assert not np.array_equal(np.asarray(image), np.asarray(changed))


def test_images_are_saved_with_how_they_were_made_and_a_contact_sheet(tiny_pipe, tmp_path):
    result = generate("a photo of Alice at the beach", _identity(tiny_pipe), tiny_pipe, num_images_per_prompt=2,
                      num_inference_steps=2, seed=42, negative_prompt="blurry", out_dir=tmp_path)
    assert [path.name for path in result.paths] == ["00-seed42.png", "01-seed43.png"]
    text = Image.open(result.paths[1]).text
    details = json.loads(text["anybody"])
    assert details["seed"] == 43 and details["prompt"] == "a photo of Alice at the beach"
    assert details["identities"] == ["alice"] and details["model"] == "tiny"
    assert details["negative_prompt"] == "blurry" and details["scheduler"] == "DDIMScheduler"
    assert "Seed: 43" in text["parameters"]
    assert result.sheet == tmp_path / "sheet.png" and Image.open(result.sheet).size[0] >= 256


def test_apply_makes_a_plain_diffusers_prompt_use_the_identity_rows(tiny_pipe):
    alice = _identity(tiny_pipe)
    apply(tiny_pipe, alice)
    ids = tiny_pipe.tokenizer("<alice> <alice>_1", add_special_tokens=False).input_ids
    table = tiny_pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(table[ids], alice.embeddings)
    converted = tiny_pipe.maybe_convert_prompt("a photo of <alice>", tiny_pipe.tokenizer)
    assert converted == "a photo of <alice> <alice>_1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_inference_steps": 0}, "steps"), ({"height": 100}, "multiple of 8"), ({"width": 0}, "multiple of 8"),
     ({"guidance_scale": -1.0}, "finite number, 0 or more"), ({"guidance_scale": float("inf")}, "finite number"),
     ({"num_images_per_prompt": 0}, "at least 1"), ({"width": 8192}, "at most 4096 px"),
     ({"num_inference_steps": 1001}, "at most 1000 for this model .*its scheduler knows 1000 timesteps"),
     ({"batch_size": 0}, "batch size must be at least 1")],
)
def test_bad_generation_settings_say_what_to_pass(tiny_pipe, kwargs, message):
    with pytest.raises(UsageError, match=message):
        generate("a photo of alice", _identity(tiny_pipe), tiny_pipe, **kwargs)


def test_an_identity_missing_from_the_prompt_or_the_library_is_named(tiny_pipe, library):
    with pytest.raises(UsageError, match="does not mention alice"):
        generate("a photo of someone", _identity(tiny_pipe), tiny_pipe)
    with pytest.raises(IdentityError, match="No identity called 'bob'"):
        generate("a photo of bob", "bob", tiny_pipe, library=library)


def test_an_identity_of_another_width_is_refused_with_both_widths(tiny_pipe):
    wrong = Identity(name="alice", encoder_embeddings={"text_encoder": torch.randn(2, 768)},
                     metadata={"family": "sd1", "base_model": "CompVis/stable-diffusion-v1-4"})
    with pytest.raises(IdentityError, match=r"width 768.*needs width 32"):
        generate("a photo of alice", wrong, tiny_pipe)


def test_a_prompt_longer_than_the_encoder_reads_is_named(tiny_pipe, caplog):
    long_prompt = "a photo of alice " + "with a very long description " * 20
    generate(long_prompt, _identity(tiny_pipe), tiny_pipe, num_images_per_prompt=1, num_inference_steps=1)
    assert "reads only the first 77" in caplog.text
