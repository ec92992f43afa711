import numpy as np
import pytest
import torch
from PIL import Image

from anybody.attention import (
    AttentionAverager,
    PromptWord,
    attention_heatmaps,
    colormap,
    prompt_words,
    render_heatmaps,
)
from anybody.models.tokenizer import clip_tokenizer

PROMPT = "a photo of a zxqvbnm person enjoying a cup of latte"


def test_words_merge_bpe_pieces_and_identity_tokens_and_skip_special_tokens():
    tokenizer = clip_tokenizer()
    tokenizer.add_tokens(["<alice>", "<alice>_1"])
    words = prompt_words(tokenizer, "A zxqvbnm café, <alice> <alice>_1 drinking")
    assert [word.text for word in words] == ["a", "zxqvbnm", "café", ",", "<alice>", "drinking"]
    assert words[0].positions == (1,)  # position 0 is the start token
    assert len(words[1].positions) > 1  # a rare word is several BPE pieces
    assert words[4].positions == (words[3].positions[0] + 1, words[3].positions[0] + 2)
    assert words[-1].positions[-1] + 1 == len(tokenizer("A zxqvbnm café, <alice> <alice>_1 drinking").input_ids) - 1


def test_colormap_runs_from_cold_to_hot():
    colours = colormap(np.array([0.0, 0.5, 1.0, 2.0]))
    assert colours.dtype == np.uint8 and colours.shape == (4, 3)
    assert tuple(colours[0]) == (0, 0, 128) and tuple(colours[2]) == (128, 0, 0)
    assert tuple(colours[3]) == tuple(colours[2])  # clipped
    assert colours[1, 1] > 200  # the middle is green-ish


def test_averager_keeps_the_conditional_half_and_averages_heads_layers_and_steps():
    averager = AttentionAverager((2, 2), conditional_batch=1)
    heads = 2
    uncond = torch.zeros(heads, 4, 3)
    for value in (1.0, 3.0):  # two calls: two layers or two steps
        cond = torch.full((heads, 4, 3), value)
        cond[1] = 0.0  # the second head sees nothing: the head mean halves it
        averager.record("layer", heads, torch.cat([uncond, cond]))
    average = averager.average()
    assert average.shape == (1, 3, 2, 2)
    assert torch.allclose(average, torch.full_like(average, 1.0))
    with pytest.raises(ValueError, match="batch 3"):
        averager.record("layer", 1, torch.zeros(3, 4, 3))


def test_rendered_sheet_has_the_picture_then_one_tile_per_word():
    picture = Image.fromarray(np.full((64, 96, 3), 120, dtype=np.uint8))
    words = [PromptWord("left", (1,)), PromptWord("right", (2, 3))]
    maps = torch.zeros(77, 4, 4)
    maps[1, :, :2] = 1.0
    maps[2, :, 2:] = 0.5
    maps[3, :, 2:] = 0.5
    sheet = render_heatmaps(picture, words, maps, tile=96)
    assert sheet.labels == ["(picture)", "left", "right"]
    assert len(sheet.boxes) == 3
    pixels = np.asarray(sheet.image)
    left_tile = pixels[sheet.boxes[1][1]:sheet.boxes[1][3], sheet.boxes[1][0]:sheet.boxes[1][2]]
    right_tile = pixels[sheet.boxes[2][1]:sheet.boxes[2][3], sheet.boxes[2][0]:sheet.boxes[2][2]]
    assert left_tile.shape == (64, 96, 3)
    # Hot (red) where the word attends, cold (blue) elsewhere.
    assert left_tile[32, 5, 0] > left_tile[32, 5, 2] and left_tile[32, 90, 2] > left_tile[32, 90, 0]
    assert right_tile[32, 90, 0] > right_tile[32, 90, 2] and right_tile[32, 5, 2] > right_tile[32, 5, 0]


def test_attention_heatmaps_writes_a_png_of_the_generation(pipe, tmp_path):
    before = pipe.unet.attn_processors
    path = tmp_path / "maps" / "heatmaps.png"
    result = attention_heatmaps(pipe, PROMPT, path, num_inference_steps=2, guidance_scale=7.5,
                                generator=torch.Generator().manual_seed(0), tile=96)
    words = prompt_words(pipe.tokenizer, PROMPT)
    assert [word.text for word in result.words] == PROMPT.split()
    assert result.words == words
    assert result.sheet.labels == ["(picture)", *PROMPT.split()]
    assert len(result.sheet.boxes) == len(words) + 1
    height, width = (size // 2 for size in (pipe.unet.config.sample_size,) * 2)  # level 1: half the latent
    assert result.maps.shape == (77, height, width)
    assert torch.allclose(result.maps.sum(0), torch.ones(()), atol=1e-4)  # still a distribution per pixel
    with Image.open(path) as written:
        assert written.format == "PNG"
        written.verify()
    with Image.open(path) as written:
        assert written.size == result.sheet.image.size
        assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(result.sheet.image))
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left behind
    after = pipe.unet.attn_processors
    assert all(after[key] is before[key] for key in before)
