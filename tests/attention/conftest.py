"""One tiny pipeline for the whole folder (tests here never change its weights or vocabulary)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="package")
def pipe(anybody_home: Path):
    from anybody.models import load_pipeline

    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="package")
def sd15_meta_unet():
    """A UNet of SD 1.5's sizes on the meta device: the real structure, no 3.4 GB of weights."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel(
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
