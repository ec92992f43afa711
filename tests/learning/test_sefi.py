"""SeFi-IDE on the tiny model: per-stage key/value tokens, their stages, generation and the refusal to export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from anybody.errors import IdentityError
from anybody.generation import apply, generate
from anybody.identity import Identity
from anybody.identity.stages import stage_of
from anybody.identity.writers import export_identity
from anybody.interfaces.cli import main
from anybody.learning import LearnConfig, learn
from anybody.learning.conditioning import PromptEncoder
from anybody.models import load_pipeline


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


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_generation_feeds_the_unet_each_stages_tokens_as_learning_did(model, sample_photo, library):
    config = LearnConfig.for_method("sefi", steps=2, views=2, checkpoint_every=2)
    identity = learn(sample_photo, "eileen", load_pipeline(model, device="cpu"), config, library=library,
                     progress=False)[0]
    pipe = load_pipeline(model, device="cpu")
    apply(pipe, identity)
    seen: list[tuple[int, torch.Tensor, torch.Tensor, dict]] = []

    def spy(module, args, kwargs):  # runs after the switch's own pre-hook, with what it handed on
        store = pipe.anybody_stage_switch.store
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        added = kwargs.get("added_cond_kwargs") or {}
        seen.append((int(timestep), store.key_states, store.value_states, states, added))

    pipe.unet.register_forward_pre_hook(spy, with_kwargs=True)
    pipe("a photo of <eileen>", num_inference_steps=4, guidance_scale=3.0, generator=torch.Generator().manual_seed(0))

    text = PromptEncoder(pipe, [["<eileen>"]], identity.encoder_embeddings, resolution=128)
    ids = text.tokenize(["a photo of <eileen>"])
    stages_seen = set()
    for timestep, keys, values, states, added in seen:
        stage = int(stage_of(torch.tensor([timestep]), 5)[0])
        stages_seen.add(stage)
        by_keys = text(ids, {e: tokens[stage][None] for e, tokens in identity.stage_keys.items()})
        by_values = text(ids, {e: tokens[stage][None] for e, tokens in identity.stage_values.items()})
        assert torch.allclose(keys[1], by_keys.hidden[0], atol=1e-5)  # row 1: the prompt (row 0: negative)
        assert torch.allclose(values[1], by_values.hidden[0], atol=1e-5)
        assert torch.equal(keys[0], states[0]) and torch.equal(values[0], states[0])  # the negative is left alone
        if by_values.added is not None:  # SDXL: the pooled embedding is the stage's value encoding's
            assert torch.allclose(added["text_embeds"][1], by_values.added["text_embeds"][0], atol=1e-5)
    assert len(stages_seen) >= 3
    text.remove()
    pipe.anybody_stage_switch.remove()


def test_sefi_identities_draw_differently_from_their_mean_token(sefi_identity, tiny_pipe):
    staged = generate("a photo of eileen", sefi_identity, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3)
    tiny_pipe.anybody_stage_switch.remove()
    plain = Identity("eileen", dict(sefi_identity.encoder_embeddings))
    flat = generate("a photo of eileen", plain, tiny_pipe, num_images_per_prompt=1, num_inference_steps=3)
    assert not np.array_equal(np.asarray(staged.images[0]), np.asarray(flat.images[0]))


def test_a_sefi_identity_cannot_become_a_textual_inversion_file(sefi_identity, tmp_path):
    with pytest.raises(IdentityError, match=r"anybody\.apply\(pipe, identity\)"):
        export_identity(sefi_identity, "diffusers", tmp_path / "x.safetensors")


@pytest.mark.slow
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
