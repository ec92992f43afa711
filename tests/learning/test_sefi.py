"""SeFi-IDE on the tiny model: per-stage key/value tokens, their stages, generation and the refusal to export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from anybody.errors import IdentityError
from anybody.generation import apply, generate
from anybody.identity import Identity
from anybody.identity.formats import export_identity
from anybody.identity.stages import stage_of
from anybody.identity.tokens import TokenInjection
from anybody.interfaces.cli import main
from anybody.learning import LearnConfig, learn


def test_timesteps_fall_in_five_even_stages_at_every_boundary():
    timesteps = torch.tensor([0, 199, 200, 399, 400, 599, 600, 799, 800, 999])
    assert stage_of(timesteps, 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert stage_of(torch.tensor([0, 499, 500, 999]), 2).tolist() == [0, 0, 1, 1]


@pytest.fixture
def sefi_identity(tiny_pipe, sample_photo, library) -> Identity:
    config = LearnConfig.for_method("sefi", steps=3, views=4, checkpoint_every=3)
    return learn(sample_photo, "eileen", tiny_pipe, config, library=library, progress=False)[0]


def test_sefi_learns_per_stage_key_and_value_tokens(sefi_identity, tiny_pipe, library):
    width = tiny_pipe.text_encoder.config.hidden_size
    loaded = Identity.load("eileen", library)
    assert loaded.method == "sefi" and loaded.stages == 5
    assert loaded.stage_keys["text_encoder"].shape == loaded.stage_values["text_encoder"].shape == (5, 1, width)
    assert not torch.equal(loaded.stage_keys["text_encoder"], loaded.stage_values["text_encoder"])
    assert loaded.module and loaded.metadata["training"]["attention_loss"] == 0.003


def test_generation_switches_the_stage_tokens_at_every_step(sefi_identity, tiny_pipe):
    apply(tiny_pipe, sefi_identity)
    switch = tiny_pipe.anybody_stage_switch
    prompt_embeds, negative = tiny_pipe.encode_prompt("a photo of <eileen>", "cpu", 1, True, "")
    states = torch.cat([negative, prompt_embeds])
    encoded = switch.recent[-1]
    ids = tiny_pipe.tokenizer("a photo of <eileen>", padding="max_length", max_length=77, return_tensors="pt").input_ids
    injection = TokenInjection(tiny_pipe.text_encoder, switch.ids[0])
    switch._busy = True
    for stage in (0, 3):
        for tokens, made in ((sefi_identity.stage_keys, encoded.keys), (sefi_identity.stage_values, encoded.values)):
            injection.values = tokens["text_encoder"][stage]
            assert torch.allclose(tiny_pipe.text_encoder(ids)[0][0], made[stage], atol=1e-5)
    injection.remove()
    switch._busy = False
    for timestep, stage in ((950, 4), (10, 0), (450, 2)):
        switch._before_unet(tiny_pipe.unet, (), {"timestep": torch.tensor(timestep), "encoder_hidden_states": states})
        assert torch.equal(switch.store.key_states[1], encoded.keys[stage])
        assert torch.equal(switch.store.value_states[1], encoded.values[stage])
        assert torch.equal(switch.store.key_states[0], negative[0])  # the negative prompt is left alone
    switch.remove()


def test_sefi_identities_draw_differently_from_their_mean_token(sefi_identity, tiny_pipe):
    staged = generate("a photo of eileen", sefi_identity, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3)
    tiny_pipe.anybody_stage_switch.remove()
    plain = Identity("eileen", dict(sefi_identity.encoder_embeddings))
    flat = generate("a photo of eileen", plain, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3)
    assert not np.array_equal(np.asarray(staged.images[0]), np.asarray(flat.images[0]))


def test_a_sefi_identity_cannot_become_a_textual_inversion_file(sefi_identity, tmp_path):
    with pytest.raises(IdentityError, match=r"anybody\.apply\(pipe, identity\)"):
        export_identity(sefi_identity, "diffusers", tmp_path / "x.safetensors")


def test_learn_and_attention_through_the_cli(sample_photo, tmp_path, capsys):
    library = tmp_path / "library"
    assert main(["learn", str(sample_photo), "--name", "eileen", "--method", "sefi", "--model", "tiny",
                 "--steps", "2", "--views", "2", "--library", str(library)]) == 0
    out = tmp_path / "attention.png"
    assert main(["attention", "eileen is enjoying a cup of latte", "--identity", "eileen", "--library",
                 str(library), "--steps", "2", "--seed", "1", "--out", str(out)]) == 0
    assert Image.open(out).format == "PNG" and str(out) in capsys.readouterr().out


@pytest.mark.parametrize("tokens", ["all", "identity", "prompt"])
def test_celeb_basis_with_the_attention_loss_over_each_choice_of_token_maps(tiny_pipe, sample_photo, library,
                                                                             tokens):
    losses: list[float] = []
    config = LearnConfig(steps=3, views=4, attention_loss=0.003, attention_tokens=tokens)
    identity = learn(sample_photo, "eileen", tiny_pipe, config, library=library, progress=False,
                     callback=lambda step, loss: losses.append(loss))[0]
    assert identity.method == "celeb-basis" and all(np.isfinite(losses))
