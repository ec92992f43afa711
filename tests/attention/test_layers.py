import pytest
import torch

from anybody.attention import (
    AttentionStore,
    block_resolutions,
    cross_attention_layers,
    cross_attention_resolutions,
    install,
    latent_size_of,
    resolution_for,
)
from anybody.errors import UsageError


def test_tiny_unet_layers_and_levels_come_from_its_blocks(pipe):
    layers = cross_attention_layers(pipe.unet, 16)
    by_block = {layer.block: layer.resolution for layer in layers}
    assert by_block == {"down_blocks.0": (16, 16), "down_blocks.1": (8, 8), "mid_block": (4, 4),
                        "up_blocks.1": (8, 8), "up_blocks.2": (16, 16)}
    assert all(layer.name.endswith("attn2") for layer in layers)
    assert {layer.processor_key for layer in layers} <= set(pipe.unet.attn_processors)
    assert cross_attention_resolutions(pipe.unet, 16) == [(16, 16), (8, 8), (4, 4)]
    assert resolution_for(pipe.unet, 16, 0) == (16, 16)
    assert resolution_for(pipe.unet, 16) == (8, 8)  # SeFi-IDE's level: the second-highest
    assert resolution_for(pipe.unet, 16, -1) == (4, 4)
    assert resolution_for(pipe.unet) == (8, 8)  # latent size defaults to the UNet's sample_size (16)
    assert resolution_for(pipe.unet, 32) == (16, 16)
    assert latent_size_of(pipe, 128) == (16, 16)


def test_sd15_sizes_give_the_papers_32x32_level(sd15_meta_unet):
    unet = sd15_meta_unet
    assert next(unet.parameters()).device.type == "meta"
    assert cross_attention_resolutions(unet, 64) == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert resolution_for(unet, 64, 1) == (32, 32)
    layers = cross_attention_layers(unet, 64)
    assert len(layers) == 16  # 2 per cross-attention down block, 1 in the mid block, 3 per up block
    at_32 = [layer for layer in layers if layer.resolution == (32, 32)]
    assert [layer.block for layer in at_32] == ["down_blocks.1"] * 2 + ["up_blocks.2"] * 3
    assert {(layer.heads, layer.head_dim) for layer in at_32} == {(8, 80)}
    assert block_resolutions(unet, (64, 48))["mid_block"] == (8, 6)


def test_derived_resolutions_match_a_real_forward_pass_on_a_non_square_latent(sd15_meta_unet):
    unet = sd15_meta_unet
    expected = {layer.name: layer.resolution for layer in cross_attention_layers(unet, (64, 48))}
    seen = {}
    handles = [
        module.register_forward_hook(
            lambda module, args, output, name=name: seen.__setitem__(name, args[0].shape[1]))
        for name, module in unet.named_modules() if name in expected
    ]
    try:
        with torch.no_grad():
            unet(torch.empty(1, 4, 64, 48, device="meta"), 10,
                 encoder_hidden_states=torch.empty(1, 77, 768, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    assert seen == {name: height * width for name, (height, width) in expected.items()}


def test_recording_at_sd15s_32x32_level_gives_the_papers_map_shape(sd15_meta_unet):
    unet = sd15_meta_unet
    store = AttentionStore(resolution_for(unet, 64, 1))
    with torch.no_grad(), install(unet, store):
        unet(torch.empty(1, 4, 64, 64, device="meta"), 10,
             encoder_hidden_states=torch.empty(1, 77, 768, device="meta"))
    assert len(store.records) == 5
    assert {tuple(record.probabilities.shape) for record in store.records} == {(8, 32 * 32, 77)}
    assert tuple(store.records[0].per_head().shape) == (1, 8, 32, 32, 77)  # the paper's 8 x 77 x 32 x 32


def test_bad_levels_and_sizes_say_what_to_do(pipe):
    with pytest.raises(UsageError, match="level 3 does not exist"):
        resolution_for(pipe.unet, 16, 3)
    with pytest.raises(ValueError, match="positive int"):
        cross_attention_layers(pipe.unet, (16, 0))
    with pytest.raises(UsageError, match="multiples of 8"):
        latent_size_of(pipe, 130)
