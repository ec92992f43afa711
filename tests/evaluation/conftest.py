"""Fixtures of the evaluation tests: a small random CLIP model saved as a folder, a second photo."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP model with random weights and tiny sizes (the real CLIP tokenizer), saved like a Hub folder:
    enough for the code path of CLIP-T; what its scores mean needs real weights."""
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    from anybody.models.tokenizer import clip_tokenizer

    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor  # no torchvision needed
    except ImportError:
        from transformers import CLIPImageProcessor as ImageProcessor

    folder = tmp_path_factory.mktemp("tiny-clip")
    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config={"hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "vocab_size": len(tokenizer), "max_position_embeddings": 77},
        vision_config={"hidden_size": 20, "intermediate_size": 36, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=12,
    )
    CLIPModel(config).save_pretrained(folder)
    images = ImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def mirrored_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample photo mirrored: the same person, a different picture."""
    from PIL import ImageOps

    from anybody.face import load_photo
    from tests.conftest import SAMPLE_PHOTO

    path = tmp_path_factory.mktemp("mirrored") / "mirrored.png"
    ImageOps.mirror(load_photo(SAMPLE_PHOTO)).save(path)
    return path
