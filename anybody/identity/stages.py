"""Denoising stages: SeFi-IDE gives each fifth of the noise schedule its own key and value tokens.

The training timesteps (1000 for Stable Diffusion) are split evenly into S stages; stage 0 holds the
last, low-noise steps (fine identity detail), stage S-1 the first, high-noise ones (layout, pose, light).
"""

from __future__ import annotations

import torch

from anybody.identity.file import Identity


def stage_of(timesteps: torch.Tensor, stages: int, total: int = 1000) -> torch.Tensor:
    """The stage index of each timestep (0 to stages-1)."""
    return (timesteps.long() * stages // total).clamp(0, stages - 1)


def tokens_at(identity: Identity, timesteps: torch.Tensor, encoder: str = "text_encoder",
              total: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys, values), each (batch, tokens, width): the identity's tokens at each timestep's stage.

    An identity without stages has one embedding for keys and values alike at every step.
    """
    if not identity.stages:
        embeddings = identity.encoder_embeddings[encoder]
        batch = embeddings.expand(len(timesteps), -1, -1)
        return batch, batch
    stage = stage_of(timesteps.cpu(), identity.stages, total)
    return identity.stage_keys[encoder][stage], identity.stage_values[encoder][stage]
