"""CLIP-T: the code path with a small random CLIP model built in code (what the numbers mean needs real
weights), and the empty column, with its reason, when no CLIP model can be loaded."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anybody.evaluation.scoring import ClipScorer, load_clip


def test_clip_t_is_one_cosine_per_image_and_text(tiny_clip):
    scorer, reason = load_clip(str(tiny_clip))
    assert isinstance(scorer, ClipScorer) and reason == ""
    red, noise = Image.new("RGB", (64, 48), (200, 20, 20)), Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    texts = ["a photo of a person wearing a red hat", "an oil painting of a person"]
    scores = scorer.scores(texts, [red, noise])
    assert len(scores) == 2 and all(-1.0 <= s <= 1.0 for s in scores)
    assert scores[0] != scores[1]
    assert scorer.scores(texts[:1], [red]) == pytest.approx(scores[:1], abs=1e-5)  # batching changes nothing
    assert scorer.scores([], []) == []
    with pytest.raises(ValueError):
        scorer.scores(texts, [red])


def test_no_clip_model_leaves_the_column_empty_and_says_why(tmp_path):
    scorer, reason = load_clip(None)
    assert scorer is None and "no CLIP model was given" in reason and "--clip" in reason
    scorer, reason = load_clip(str(tmp_path / "missing-clip"))
    assert scorer is None and "could not be loaded" in reason and "missing-clip" in reason
