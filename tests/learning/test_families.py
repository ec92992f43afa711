"""SD 1.x, SD 2.x and SDXL (the tiny models of each): what the UNet is fed, and people learned and drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from anybody.generation import apply, generate
from anybody.identity import Identity, token_strings
from anybody.learning import LearnConfig, learn
from anybody.learning.conditioning import PromptEncoder
from anybody.models import model_family, text_encoders

FAMILIES = {"tiny": "sd1", "tiny-sd2": "sd2", "tiny-sdxl": "sdxl"}


@pytest.mark.parametrize("model", FAMILIES)
def test_the_family_is_read_from_the_loaded_components(model, tiny_pipeline):
    assert model_family(tiny_pipeline(model)) == FAMILIES[model]


@pytest.mark.parametrize("model", FAMILIES)
def test_learning_feeds_the_unet_exactly_what_the_familys_pipeline_does(model, tiny_pipeline):
    """The prompt encoding used for learning equals the diffusers pipeline's own (SDXL: pooled too)."""
    pipe = tiny_pipeline(model)
    rows = {name: torch.randn(2, encoder.get_input_embeddings().weight.shape[1])
            for name, _, encoder in text_encoders(pipe)}
    text = PromptEncoder(pipe, [token_strings("alice", 2)], rows, resolution=128)
    prompt = "a photo of <alice> <alice>_1 on a beach"
    ours = text(text.tokenize([prompt]))
    # diffusers expands "<alice>" to all of its tokens itself (its textual-inversion naming).
    theirs = pipe.encode_prompt("a photo of <alice> on a beach", device="cpu", num_images_per_prompt=1,
                                do_classifier_free_guidance=False)
    assert torch.allclose(ours.hidden, theirs[0], atol=1e-6)
    if FAMILIES[model] == "sdxl":
        assert torch.allclose(ours.added["text_embeds"], theirs[2], atol=1e-6)
        assert ours.added["time_ids"].tolist() == [[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]]
    else:
        assert ours.added is None
    # Tokens given per call replace the installed rows, per encoder at its own width.
    other = {name: torch.randn(1, 2, value.shape[1]) for name, value in rows.items()}
    assert not torch.allclose(text(text.tokenize([prompt]), other).hidden, ours.hidden)
    text.remove()


@pytest.fixture(scope="module")
def three_photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three different pictures of faces: the sample photo, its mirror image, and a warmer, tighter crop."""
    sample = Image.open(Path(__file__).resolve().parents[2] / "anybody" / "data" / "sample_face.jpg").convert("RGB")
    folder = tmp_path_factory.mktemp("photos")
    width, height = sample.size
    pictures = [sample, ImageOps.mirror(sample),
                ImageOps.colorize(ImageOps.grayscale(sample), "#301000", "#ffe0c0").crop(
                    (width // 16, height // 16, width - width // 16, height - height // 16))]
    paths = []
    for index, picture in enumerate(pictures):
        paths.append(folder / f"person{index}.png")
        picture.save(paths[-1])
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("model", FAMILIES)
def test_two_people_learned_jointly_and_a_third_alone_are_drawn_together(model, three_photos, tmp_path,
                                                                         tiny_pipeline):
    pipe = tiny_pipeline(model)
    config = LearnConfig(steps=4, views=4, checkpoint_every=4)
    library = tmp_path / "library"
    alice, bob = learn(three_photos[:2], ["alice", "bob"], pipe, config, library=library, progress=False)
    (carol,) = learn(three_photos[2], "carol", pipe, config, library=library, progress=False)

    widths = {name: encoder.get_input_embeddings().weight.shape[1] for name, _, encoder in text_encoders(pipe)}
    for person in (alice, bob, carol):
        loaded = Identity.load(person.name, library)
        assert {name: value.shape for name, value in loaded.encoder_embeddings.items()} == {
            name: (2, width) for name, width in widths.items()}
        assert set(loaded.encoder_coefficients) == set(widths)  # each encoder its own basis and coefficients
        assert all(f"basis.{name}" in loaded.metadata for name in widths)
        assert loaded.metadata["family"] == FAMILIES[model]
    for name in widths:  # different photos, different people
        assert not torch.allclose(alice.encoder_embeddings[name], bob.encoder_embeddings[name])

    prompt = "alice and bob shaking hands, carol taking the photo"
    result = generate(prompt, ["alice", "bob", "carol"], pipe, num_images_per_prompt=1, num_inference_steps=2,
                      library=library, out_dir=tmp_path / "out")
    assert result.paths[0].is_file() and result.images[0].size == (128, 128)
    for name, tokenizer, encoder in text_encoders(pipe):  # every encoder holds every person's own rows
        table = encoder.get_input_embeddings().weight
        for person in (alice, bob, carol):
            ids = tokenizer.convert_tokens_to_ids(token_strings(person.name, 2))
            assert torch.equal(table[ids], person.encoder_embeddings[name])
    without_carol = generate(prompt.replace("carol", "someone"), [alice, bob], pipe, num_images_per_prompt=1,
                             num_inference_steps=2)
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(without_carol.images[0]))


def test_an_identity_from_another_family_is_refused_naming_both(three_photos, tmp_path, tiny_pipeline):
    (person,) = learn(three_photos[0], "dana", tiny_pipeline("tiny-sdxl"), LearnConfig(steps=1, views=2),
                      library=tmp_path, progress=False)
    sd2 = tiny_pipeline("tiny-sd2")
    with pytest.raises(Exception, match=r"made for sdxl .*width 32.*needs width 48"):
        apply(sd2, person)
    sd1 = tiny_pipeline("tiny")  # the first encoder's width matches; the second has no place
    with pytest.raises(Exception, match=r"made for sdxl \(text_encoder_2 width 40\); this sd1 model has no "
                                        r"text_encoder_2"):
        apply(sd1, person)


@pytest.mark.slow
def test_the_papers_running_average_keeps_each_persons_coefficients_per_encoder(three_photos, tmp_path, tiny_pipeline):
    """`coefficient_average="ema"`: per person and text encoder, c ← 0.99·c + 0.01·(the MLP's output)."""
    from anybody.basis import CelebBasis, build_basis
    from anybody.methods.celeb_basis.learner import CelebBasisLearner

    bases = {encoder: CelebBasis(mean=torch.zeros(2, 4), components=torch.eye(3, 4).expand(2, 3, 4), key=encoder)
             for encoder in ("text_encoder", "text_encoder_2")}
    learner = CelebBasisLearner(bases, feature_dim=5, identities=2, average="ema")
    first, second = torch.ones(2, 2, 3), torch.zeros(2, 2, 3)
    learner.last_coefficients = {"text_encoder": first, "text_encoder_2": first * 2}
    learner.after_step(torch.tensor([0, 1]))
    learner.last_coefficients = {"text_encoder": second, "text_encoder_2": second}
    learner.after_step(torch.tensor([1, 1]))
    assert torch.equal(learner.average_text_encoder[0], torch.ones(2, 3))  # alice, not drawn again: unchanged
    assert torch.allclose(learner.average_text_encoder[1], torch.full((2, 3), 0.99**2))  # bob
    assert torch.allclose(learner.average_text_encoder_2[1], torch.full((2, 3), 2 * 0.99**2))

    pipe = tiny_pipeline("tiny-sdxl")
    learned = {average: learn(three_photos[:2], ["alice", "bob"], pipe,
                              LearnConfig(steps=3, views=2, coefficient_average=average),
                              library=tmp_path / average, progress=False)
               for average in ("ema", "views")}
    for ema, views in zip(learned["ema"], learned["views"]):
        for name, tokenizer, encoder in text_encoders(pipe):
            coefficients = ema.encoder_coefficients[name]
            assert not torch.allclose(coefficients, views.encoder_coefficients[name])
            basis = build_basis(tokenizer, encoder.get_input_embeddings().weight)
            assert torch.allclose(ema.encoder_embeddings[name], basis.embeddings(coefficients), atol=1e-6)
