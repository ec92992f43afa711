"""Per-person regions: reading them, their soft masks, and the identity's attention kept inside them at every
cross-attention layer of the tiny models of all three families (the rest of the prompt left free)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anybody.attention import (
    FEATHER,
    PRESETS,
    AttentionStore,
    CrossAttentionProcessor,
    Region,
    RegionMasks,
    attention_heatmaps,
    block_resolutions,
    check_regions,
    cross_attention_layers,
    drawn_in_regions,
    install,
    parse_region,
    pipeline_prompt,
    soft_mask,
    token_positions,
)
from anybody.attention.region_masks import nearest_grid
from anybody.attention.regions import parse_region_options
from anybody.errors import UsageError
from anybody.generation import apply
from anybody.identity import Identity, rewrite_prompt, token_strings
from anybody.models import text_encoders

FAMILIES = ["tiny", "tiny-sd2", "tiny-sdxl"]
PROMPT = "a photo of alice at the beach"


def test_presets_and_boxes_are_fractions_of_the_picture():
    assert parse_region("left") == Region(0, 0, 0.5, 1) and parse_region(" Right ") == Region(0.5, 0, 1, 1)
    assert parse_region("0.1,0.2,0.6,0.9") == Region(0.1, 0.2, 0.6, 0.9) == parse_region((0.1, 0.2, 0.6, 0.9))
    assert str(PRESETS["center"]) == "center" and str(Region(0, 0, 0.25, 1)) == "0,0,0.25,1"
    assert parse_region_options(["Alice=left", "bob=0.5,0,1,1"]) == {"alice": PRESETS["left"], "bob": PRESETS["right"]}


@pytest.mark.parametrize(("where", "message"), [
    ("lft", "not one of left, right, top, bottom, center nor x0,y0,x1,y1"),
    ("0,0,1", "not one of"),
    ("0,0,1.5,1", "reaches outside the picture.*from 0 to 1"),
    ("-0.1,0,0.5,1", "reaches outside the picture"),
    ("nan,0,0.5,1", "reaches outside the picture"),
    ("0.6,0,0.4,1", "is empty: x0 must be less than x1"),
    ("0,0.5,1,0.5", "is empty"),
])
def test_a_malformed_region_or_one_outside_the_picture_says_what_to_pass(where, message):
    with pytest.raises(UsageError, match=message) as refused:
        parse_region(where, "alice")
    assert "alice" in str(refused.value) and "\n" not in str(refused.value)


def test_each_region_option_names_one_identity_once_and_only_identities_drawn():
    with pytest.raises(UsageError, match=r"does not say whose region.*NAME=WHERE"):
        parse_region_options(["left"])
    with pytest.raises(UsageError, match="alice has two regions"):
        parse_region_options(["alice=left", "Alice=right"])
    with pytest.raises(UsageError, match=r"region for bob, who is not drawn \(the identities drawn: alice\).*"
                                          r"Add bob to the identities"):
        check_regions({"alice": "left", "bob": "right"}, ["alice"])
    assert check_regions({"Alice": (0, 0, 0.5, 1)}, ["alice"]) == {"alice": PRESETS["left"]}
    assert check_regions(None, ["alice"]) == {}


def test_the_soft_mask_is_one_inside_zero_outside_and_ramps_across_the_edge():
    mask = soft_mask(Region(0.25, 0.25, 0.75, 0.75), 64, 64)
    centres = (np.arange(64) + 0.5) / 64
    row = mask[32].numpy()
    assert np.all(row[(centres > 0.25 + FEATHER / 2) & (centres < 0.75 - FEATHER / 2)] == 1.0)
    assert np.all(row[(centres < 0.25 - FEATHER / 2) | (centres > 0.75 + FEATHER / 2)] == 0.0)
    ramp = row[(centres > 0.25 - FEATHER / 2) & (centres < 0.25 + FEATHER / 2)]
    assert len(ramp) >= 5 and np.all(np.diff(ramp) > 0) and ramp.min() > 0 and ramp.max() < 1
    assert torch.equal(mask, mask.T)  # the same ramp on both axes


def test_an_edge_on_the_picture_border_has_no_ramp_and_a_small_region_never_vanishes():
    left = soft_mask(PRESETS["left"], 16, 16)
    assert torch.all(left[:, :7] == 1.0) and torch.all(left[0, :8] == left[-1, :8])  # no fade at the top or left
    for size in (2, 3, 4, 8, 64):  # the ramp is at least one pixel of the grid: some weight is always left
        tiny_box = soft_mask(Region(0.49, 0.49, 0.51, 0.51), size, size)
        assert tiny_box.max() > 0, size


def _encoder_widths(pipe) -> dict[str, int]:
    return {name: encoder.get_input_embeddings().weight.shape[1] for name, _, encoder in text_encoders(pipe)}


def _identity(pipe, name: str = "alice", staged: bool = False, seed: int = 3) -> Identity:
    """A random identity: tokens only (as Celeb Basis and Textual Inversion leave them), or SeFi-IDE's five
    stages of key and value tokens."""
    generator = torch.Generator().manual_seed(seed)
    widths = _encoder_widths(pipe)
    embeddings = {encoder: torch.randn(2, width, generator=generator) * 0.5 for encoder, width in widths.items()}
    if not staged:
        return Identity(name, embeddings, metadata={"method": "celeb-basis"})
    keys = {encoder: torch.randn(5, 2, width, generator=generator) * 0.5 for encoder, width in widths.items()}
    values = {encoder: torch.randn(5, 2, width, generator=generator) * 0.5 for encoder, width in widths.items()}
    return Identity(name, embeddings, metadata={"method": "sefi"}, stage_keys=keys, stage_values=values)


class EveryLayer(AttentionStore):
    """Records every cross-attention call's head-averaged maps of the prompt's rows, with its pixel count."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls: list[torch.Tensor] = []

    def wants(self, query_pixels: int) -> bool:
        return True

    def record(self, layer, heads, probabilities, reference=None) -> None:
        maps = probabilities.detach().float()
        maps = maps.reshape(-1, heads, *maps.shape[1:]).mean(dim=1)
        self.calls.append(maps[maps.shape[0] // 2 :])  # guided: the prompt's rows are the second half


def _inside(region: Region, height: int, width: int) -> torch.Tensor:
    ys = (torch.arange(height) + 0.5) / height
    xs = (torch.arange(width) + 0.5) / width
    return ((ys[:, None] > region.top) & (ys[:, None] < region.bottom)
            & (xs[None, :] > region.left) & (xs[None, :] < region.right))


def _shares(pipe, store: EveryLayer, positions, region: Region, latent) -> dict[tuple[int, int], tuple]:
    """For each grid, over its layers and the steps: (share of the words' attention outside the region, the
    same beyond the soft edge, the feathered edge's share of the pixels the soft mask reaches)."""
    grids = {h * w: (h, w) for h, w in block_resolutions(pipe.unet, latent).values()}
    mass: dict[tuple[int, int], torch.Tensor] = {}
    for maps in store.calls:
        grid = grids[maps.shape[1]]
        words = maps[..., list(positions)].sum(dim=-1).reshape(-1, *grid).sum(dim=0)
        mass[grid] = mass.get(grid, 0) + words
    found = {}
    for (height, width), total in mass.items():
        inside = _inside(region, height, width)
        reached = soft_mask(region, height, width) > 0
        edge_share = (reached & ~inside).sum().item() / reached.sum().item()
        found[height, width] = ((total * ~inside).sum().item() / total.sum().item(),
                                (total * ~reached).sum().item() / total.sum().item(), edge_share)
    return found


def _draw(pipe, store: AttentionStore, prompt: str, height: int | None = None, width: int | None = None):
    with install(pipe.unet, store):
        return pipe(prompt, num_inference_steps=2, guidance_scale=7.5, height=height, width=width,
                    generator=torch.Generator().manual_seed(0)).images[0]


@pytest.mark.parametrize("method", ["tokens", "sefi"], ids=["celeb-basis/textual-inversion", "sefi"])
@pytest.mark.parametrize("model", FAMILIES)
def test_an_identity_attends_only_inside_its_region_at_every_layer_while_the_rest_is_free(tiny_pipeline, model,
                                                                                           method):
    pipe = tiny_pipeline(model)
    alice = _identity(pipe, staged=method == "sefi")
    apply(pipe, alice)
    prompt = rewrite_prompt(PROMPT, ["alice"])
    size = 256  # twice the tiny models' own size, so that every family has grids the edge's ramp spans
    latent = (size // pipe.vae_scale_factor,) * 2
    region = PRESETS["left"]
    masks = RegionMasks.for_prompt(pipe, prompt, {tuple(token_strings("alice", 2)): region}, 7.5)
    positions = masks.columns[0][0]
    beach = token_positions(pipe.tokenizer, pipeline_prompt(pipe, prompt), "beach</w>")

    free, placed = EveryLayer(), EveryLayer(regions=masks)
    _draw(pipe, free, prompt, size, size)
    _draw(pipe, placed, prompt, size, size)
    layers = len(cross_attention_layers(pipe.unet))
    assert len(placed.calls) == len(free.calls) >= 2 * layers and len(placed.calls) % layers == 0  # all, each step
    if method == "sefi":  # the stage switch fed its per-stage keys and values to the regions' processors
        assert placed.key_states is not None and placed.value_states is not None
    free_shares = _shares(pipe, free, positions, region, latent)
    for grid, (outside, beyond, edge) in _shares(pipe, placed, positions, region, latent).items():
        free_outside, free_beyond, _ = free_shares[grid]
        assert beyond < 1e-6  # beyond the soft edge: nothing at all
        assert outside <= edge  # what is left outside lies on the feathered edge, within its share
        assert free_outside > edge + 0.2 and free_beyond > 0.2  # without a region it spreads over the picture
    for outside, _, edge in _shares(pipe, placed, beach, region, latent).values():
        assert outside > edge + 0.2  # another word still acts on the whole picture


def test_a_region_covering_the_picture_or_no_identity_token_changes_nothing(tiny_pipe):
    alice = _identity(tiny_pipe)
    apply(tiny_pipe, alice)
    prompt = rewrite_prompt(PROMPT, ["alice"])
    plain = np.asarray(_draw(tiny_pipe, AttentionStore(), prompt), dtype=int)
    whole = RegionMasks.for_prompt(tiny_pipe, prompt, {tuple(token_strings("alice", 2)): Region(0, 0, 1, 1)}, 7.5)
    assert np.abs(np.asarray(_draw(tiny_pipe, AttentionStore(regions=whole), prompt), dtype=int) - plain).max() <= 1
    left = RegionMasks.for_prompt(tiny_pipe, prompt, {tuple(token_strings("alice", 2)): PRESETS["left"]}, 7.5)
    placed = np.asarray(_draw(tiny_pipe, AttentionStore(regions=left), prompt), dtype=int)
    assert np.abs(placed - plain).max() > 10  # the region does change the picture


def test_one_layer_multiplies_the_identity_s_probabilities_by_the_mask_and_renormalises(tiny_pipe):
    """softmax(s + log m) = m e^s / sum: the identity's share outside goes to the other words in proportion."""
    unet = tiny_pipe.unet
    layer = cross_attention_layers(unet)[0]
    attn = dict(unet.named_modules())[layer.name]
    height, width = layer.resolution
    masks = RegionMasks([((5, 6), PRESETS["right"])], guided=True)
    hook = masks.attach(unet)  # reads the grids from a UNet call
    size = unet.config.sample_size
    unet(torch.zeros(2, unet.config.in_channels, size, size), 1,
         encoder_hidden_states=torch.zeros(2, 77, unet.config.cross_attention_dim))
    hook.remove()
    generator = torch.Generator().manual_seed(4)
    hidden = torch.randn(2, height * width, attn.to_q.in_features, generator=generator)
    text = torch.randn(2, 77, attn.to_k.in_features, generator=generator)
    free, placed = AttentionStore(layer.resolution), AttentionStore(layer.resolution, regions=masks)
    with torch.no_grad():
        CrossAttentionProcessor(free, layer.name)(attn, hidden, text)
        CrossAttentionProcessor(placed, layer.name)(attn, hidden, text)
    before = free.records[0].probabilities.reshape(2, layer.heads, height * width, 77)
    after = placed.records[0].probabilities.reshape(2, layer.heads, height * width, 77)
    assert torch.allclose(after[0], before[0])  # the unconditional row is left alone
    mask = soft_mask(PRESETS["right"], height, width).reshape(-1, 1)
    weighted = before[1].clone()
    weighted[..., [5, 6]] *= mask
    assert torch.allclose(after[1], weighted / weighted.sum(dim=-1, keepdim=True), atol=1e-6)
    assert torch.allclose(after[1].sum(dim=-1), torch.ones(layer.heads, height * width))


def test_masks_follow_each_layer_s_grid_at_a_size_and_aspect_of_the_call(tiny_pipe):
    alice = _identity(tiny_pipe)
    apply(tiny_pipe, alice)
    prompt = rewrite_prompt(PROMPT, ["alice"])
    region = PRESETS["top"]
    masks = RegionMasks.for_prompt(tiny_pipe, prompt, {tuple(token_strings("alice", 2)): region}, 7.5)
    store = EveryLayer(regions=masks)
    image = _draw(tiny_pipe, store, prompt, height=96, width=200)
    assert image.size == (200, 96) and masks.latent == (12, 25)
    assert set(masks.grids.values()) >= {(12, 25), (6, 13)}  # the UNet's own (ceil-halved) grids
    shares = _shares(tiny_pipe, store, masks.columns[0][0], region, (12, 25))
    assert len(shares) == 3 and all(beyond < 1e-6 for _, beyond, _ in shares.values())  # a wrong grid would leak


def test_drawn_in_regions_restores_the_processors_and_needs_the_word_in_the_encoding(tiny_pipe):
    alice = _identity(tiny_pipe)
    apply(tiny_pipe, alice)
    before = tiny_pipe.unet.attn_processors
    prompt = rewrite_prompt(PROMPT, ["alice"])
    with drawn_in_regions(tiny_pipe, prompt, {tuple(token_strings("alice", 2)): PRESETS["left"]}, 7.5) as masks:
        assert all(isinstance(processor, CrossAttentionProcessor) for name, processor in
                   tiny_pipe.unet.attn_processors.items() if "attn2" in name)
        tiny_pipe(prompt, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    assert masks.latent == (16, 16)
    assert tiny_pipe.unet.attn_processors.keys() == before.keys()
    assert all(type(tiny_pipe.unet.attn_processors[key]) is type(value) for key, value in before.items())
    assert not tiny_pipe.unet._forward_pre_hooks  # the latent reader is gone too
    late = "a photo of " + "a red balloon and " * 20 + "<alice>"
    with pytest.raises(UsageError, match=r"region of <alice> cannot apply.*77 tokens.*Name the identity earlier"):
        RegionMasks.for_prompt(tiny_pipe, late, {tuple(token_strings("alice", 2)): PRESETS["left"]}, 7.5)


def test_the_heatmap_of_an_identity_outlines_its_region(tiny_pipe):
    alice = _identity(tiny_pipe)
    apply(tiny_pipe, alice)
    prompt = rewrite_prompt(PROMPT, ["alice"])
    masks = RegionMasks.for_prompt(tiny_pipe, prompt, {tuple(token_strings("alice", 2)): PRESETS["left"]}, 7.5)
    result = attention_heatmaps(tiny_pipe, prompt, regions=masks, num_inference_steps=2, guidance_scale=7.5,
                                generator=torch.Generator().manual_seed(0), tile=96)
    assert len(result.sheet.labels) == 8 and result.sheet.labels[4] == "<alice>"
    assert [word.positions for word in result.words[3:5]] == [masks.columns[0][0], (6,)]  # both tokens, then "at"
    pixels = np.asarray(result.sheet.image)

    def right_edge(tile: int) -> np.ndarray:
        left, top, right, bottom = result.sheet.boxes[tile]
        middle = left + (right - left) // 2
        return pixels[top + 3 : bottom - 3, middle - 2]  # the box's white line, 2 px inside its right edge

    assert np.all(right_edge(4) == 255)
    assert not np.all(right_edge(7) == 255)  # "beach" has no region
    maps = result.maps[list(masks.columns[0][0])].sum(dim=0)
    beyond = soft_mask(PRESETS["left"], *maps.shape) == 0
    assert beyond.any() and maps[beyond].max() < 1e-6  # the recorded map is empty beyond the soft edge


def test_on_sd15_s_unet_each_layer_gets_the_mask_of_its_own_grid_at_any_proportions(sd15_meta_unet):
    """The real SD 1.5 structure (on the meta device, no weights): 768 x 512 px is a 64 x 96 latent."""
    masks = RegionMasks([((5, 6, 7), PRESETS["right"])], guided=True)
    hook = masks.attach(sd15_meta_unet)
    try:
        read_latent = next(iter(sd15_meta_unet._forward_pre_hooks.values()))
        read_latent(sd15_meta_unet, (torch.empty(2, 4, 64, 96, device="meta"),), {})
    finally:
        hook.remove()
    assert masks.latent == (64, 96)
    assert sorted(masks.grids.values()) == [(8, 12), (16, 24), (32, 48), (64, 96)]
    for height, width in masks.grids.values():
        bias = masks.bias(height * width, 4, 77, torch.float16, torch.device("cpu"))
        assert bias.shape == (4, 1, height * width, 77) and bias.dtype == torch.float16
        assert not bias[:2].any() and not bias[2:, :, :, :5].any() and not bias[2:, :, :, 8:].any()
        expected = soft_mask(PRESETS["right"], height, width).reshape(-1).log().clamp_min(-1e4).half()
        assert torch.equal(bias[3, 0, :, 6], expected) and torch.isfinite(bias).all()
        left_of_the_edge = (torch.arange(width) + 0.5) / width < 0.5 - max(FEATHER, 1 / width) / 2
        assert left_of_the_edge.any() and (bias[3, 0, :, 6].reshape(height, width)[:, left_of_the_edge] == -1e4).all()


def test_a_grid_the_unet_s_blocks_do_not_give_is_the_factorisation_nearest_the_latent_s_proportions():
    masks = RegionMasks([((5,), PRESETS["left"])], guided=False)
    with pytest.raises(RuntimeError, match="have not seen a UNet call"):
        masks.grid(64)
    masks.latent, masks.grids = (64, 96), {64 * 96: (64, 96)}
    assert masks.grid(64 * 96) == (64, 96)
    assert nearest_grid(30 * 45, (64, 96)) == masks.grid(30 * 45) == (30, 45)  # a UNet that halves otherwise
    assert nearest_grid(21, (12, 25)) == (3, 7) and nearest_grid(96, (96, 64)) == (12, 8)
    assert masks.bias(30 * 45, 1, 77, torch.float32, torch.device("cpu")).shape == (1, 1, 1350, 77)
