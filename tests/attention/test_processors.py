import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from anybody.attention import (
    AttentionStore,
    CrossAttentionProcessor,
    cross_attention_layers,
    cross_attention_resolutions,
    install,
)

TOLERANCE = 1e-5


def _inputs(pipe, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    unet = pipe.unet
    size = unet.config.sample_size
    latents = torch.randn(batch, unet.config.in_channels, size, size, generator=generator)
    text = torch.randn(batch, 77, unet.config.cross_attention_dim, generator=generator)
    return latents, torch.tensor([10, 700][:batch]), text


def _module(unet, name):
    return dict(unet.named_modules())[name]


@torch.no_grad()
def test_whole_unet_matches_diffusers_default_processors(pipe):
    unet = pipe.unet
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
    latents, timesteps, text = _inputs(pipe)
    expected = unet(latents, timesteps, encoder_hidden_states=text).sample
    # None: the SDPA path everywhere; each resolution: the explicit path at those layers.
    for resolution in [None, *cross_attention_resolutions(unet)]:
        store = AttentionStore(resolution)
        with install(unet, store):
            got = unet(latents, timesteps, encoder_hidden_states=text).sample
        assert (got - expected).abs().max().item() < TOLERANCE, resolution
    # The same encoding passed as value_states (and as reference) changes nothing either.
    store = AttentionStore(cross_attention_resolutions(unet)[1], value_states=text, reference_states=text)
    with install(unet, store):
        got = unet(latents, timesteps, encoder_hidden_states=text).sample
    assert (got - expected).abs().max().item() < TOLERANCE


@torch.no_grad()
def test_every_layer_matches_diffusers_on_both_paths(pipe):
    unet = pipe.unet
    generator = torch.Generator().manual_seed(1)
    for layer in cross_attention_layers(unet):
        attn = _module(unet, layer.name)
        height, width = layer.resolution
        hidden = torch.randn(2, height * width, attn.to_q.in_features, generator=generator)
        text = torch.randn(2, 77, attn.to_k.in_features, generator=generator)
        expected = AttnProcessor2_0()(attn, hidden, encoder_hidden_states=text)
        for resolution in [None, layer.resolution]:
            got = CrossAttentionProcessor(AttentionStore(resolution), layer.name)(attn, hidden, text)
            assert (got - expected).abs().max().item() < TOLERANCE, (layer.name, resolution)


@torch.no_grad()
def test_keys_and_values_from_different_encodings_match_a_hand_computation(pipe):
    unet = pipe.unet
    layer = cross_attention_layers(unet)[0]
    attn = _module(unet, layer.name)
    generator = torch.Generator().manual_seed(2)
    pixels = layer.resolution[0] * layer.resolution[1]
    hidden = torch.randn(2, pixels, attn.to_q.in_features, generator=generator)
    keys_from = torch.randn(2, 77, attn.to_k.in_features, generator=generator)
    values_from = torch.randn(2, 77, attn.to_v.in_features, generator=generator)

    heads, dim = layer.heads, layer.head_dim
    query = attn.to_q(hidden).view(2, pixels, heads, dim).transpose(1, 2)
    key = attn.to_k(keys_from).view(2, 77, heads, dim).transpose(1, 2)
    value = attn.to_v(values_from).view(2, 77, heads, dim).transpose(1, 2)
    weights = torch.softmax(query @ key.transpose(-1, -2) / dim**0.5, dim=-1)
    by_hand = attn.to_out[0]((weights @ value).transpose(1, 2).reshape(2, pixels, heads * dim))

    same = CrossAttentionProcessor(AttentionStore(), layer.name)(attn, hidden, keys_from)
    for resolution in [None, layer.resolution]:  # SDPA path and explicit path
        store = AttentionStore(resolution, value_states=values_from)
        split = CrossAttentionProcessor(store, layer.name)(attn, hidden, keys_from)
        assert (split - by_hand).abs().max().item() < TOLERANCE
        assert (split - same).abs().max().item() > 1e-3


@torch.no_grad()
def test_split_keys_and_values_change_the_whole_unets_output(pipe):
    unet = pipe.unet
    latents, timesteps, text = _inputs(pipe)
    other = torch.randn_like(text)
    with install(unet, AttentionStore(value_states=other)):
        split = unet(latents, timesteps, encoder_hidden_states=text).sample
    with install(unet, AttentionStore(key_states=other, value_states=other)):
        both_other = unet(latents, timesteps, encoder_hidden_states=text).sample
    plain_other = unet(latents, timesteps, encoder_hidden_states=other).sample
    plain = unet(latents, timesteps, encoder_hidden_states=text).sample
    assert (split - plain).abs().max().item() > 1e-3
    assert (both_other - plain_other).abs().max().item() < TOLERANCE


@torch.no_grad()
def test_recorded_probabilities_have_the_layer_shape_and_rows_sum_to_one(pipe):
    unet = pipe.unet
    latents, timesteps, text = _inputs(pipe)
    for resolution in cross_attention_resolutions(unet):
        store = AttentionStore(resolution)
        with install(unet, store):
            unet(latents, timesteps, encoder_hidden_states=text)
        expected_layers = [layer for layer in cross_attention_layers(unet) if layer.resolution == resolution]
        assert [record.layer for record in store.records] == [layer.name for layer in expected_layers]
        for record, layer in zip(store.records, expected_layers, strict=True):
            assert record.probabilities.shape == (2 * layer.heads, resolution[0] * resolution[1], 77)
            assert torch.allclose(record.probabilities.sum(-1), torch.ones(()), atol=1e-5)
            assert record.reference is None and not record.probabilities.requires_grad
    store = AttentionStore(None)
    with install(unet, store):
        unet(latents, timesteps, encoder_hidden_states=text)
    assert store.records == []


def test_gradients_are_kept_only_when_asked(pipe):
    unet = pipe.unet
    latents, timesteps, text = _inputs(pipe)
    text.requires_grad_(True)
    for keep in (False, True):
        store = AttentionStore(cross_attention_resolutions(unet)[1], keep_grad=keep)
        with install(unet, store):
            unet(latents, timesteps, encoder_hidden_states=text)
        assert all(record.probabilities.requires_grad == keep for record in store.records)


@torch.no_grad()
def test_reference_maps_use_the_same_queries_and_leave_the_output_alone(pipe):
    unet = pipe.unet
    latents, timesteps, text = _inputs(pipe)
    reference_text = torch.randn_like(text)
    resolution = cross_attention_resolutions(unet)[1]
    plain_store = AttentionStore(resolution)
    with install(unet, plain_store):
        plain = unet(latents, timesteps, encoder_hidden_states=text).sample
    store = AttentionStore(resolution, reference_states=reference_text)
    with install(unet, store):
        got = unet(latents, timesteps, encoder_hidden_states=text).sample
    assert torch.equal(got, plain)
    assert all(torch.equal(a, b) for a, b in zip(store.target_maps(), plain_store.target_maps(), strict=True))
    references = store.reference_maps()
    assert len(references) == len(store.records) > 0
    assert all(r.shape == t.shape and not torch.allclose(r, t) for r, t in zip(references, store.target_maps(),
                                                                              strict=True))
    # The same encoding as reference gives exactly the target maps.
    same = AttentionStore(resolution, reference_states=text)
    with install(unet, same):
        unet(latents, timesteps, encoder_hidden_states=text)
    assert all(torch.equal(r, t) for r, t in zip(same.reference_maps(), same.target_maps(), strict=True))


def test_install_restores_the_previous_processors_and_leaves_self_attention_alone(pipe):
    unet = pipe.unet
    before = unet.attn_processors
    cross = {layer.processor_key for layer in cross_attention_layers(unet)}
    store = AttentionStore()
    with install(unet, store) as handle:
        during = unet.attn_processors
        assert all(isinstance(during[key], CrossAttentionProcessor) and during[key].store is store for key in cross)
        assert all(during[key] is before[key] for key in before if key not in cross)
        assert {f"{name}.processor" for name in handle.layer_names} == cross
    after = unet.attn_processors
    assert after.keys() == before.keys() and all(after[key] is before[key] for key in before)

    handle = install(unet, store)  # also without `with`, and on error
    handle.remove()
    handle.remove()
    assert all(unet.attn_processors[key] is before[key] for key in before)
    with pytest.raises(RuntimeError), install(unet, store):
        raise RuntimeError("boom")
    assert all(unet.attn_processors[key] is before[key] for key in before)


@torch.no_grad()
def test_a_value_encoding_of_the_wrong_batch_says_what_to_do(pipe):
    unet = pipe.unet
    latents, timesteps, text = _inputs(pipe)
    with install(unet, AttentionStore(value_states=text[:1])), pytest.raises(ValueError, match="batch 1"):
        unet(latents, timesteps, encoder_hidden_states=text)
