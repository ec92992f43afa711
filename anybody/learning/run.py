"""A learning run's state, and one step's batch: what the loop (`train.py`) and the objectives it compares
the UNet with (`targets.py`) both read, so it lives below both."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DDPMScheduler, DiffusionPipeline

from anybody.face import FaceInput
from anybody.learning.attention_term import AttentionTerm
from anybody.learning.conditioning import Conditioning, PromptEncoder
from anybody.learning.config import LearnConfig
from anybody.learning.views import ViewBank
from anybody.methods.learner import Learner

Photo = str | os.PathLike[str]


@dataclass
class Run:
    """A learning run once set up: the frozen model, the photos' views, the learner, and where it stands."""

    config: LearnConfig
    names: list[str]
    photos: list[list[Photo]]  # per identity, its photos
    faces: list[list[FaceInput]]  # per identity, its photos' faces
    banks: list[ViewBank]  # per identity, the views of all its photos, photo after photo
    face_encoder: str
    pipe: DiffusionPipeline
    learner: Learner
    optimizer: torch.optim.Optimizer
    text: PromptEncoder
    prompt_ids: dict[str, torch.Tensor]  # per encoder: (identities, templates, length)
    attention: AttentionTerm
    noise_schedule: DDPMScheduler
    generator: torch.Generator  # batches: who, which view, which template
    noise_generator: torch.Generator  # noise and timesteps, on the model's device
    checkpoint: Path
    recipe: dict
    scaler: torch.amp.GradScaler  # fp16's loss scale (a pass-through for other dtypes)
    denoiser: torch.nn.Module  # the frozen UNet, or its torch.compile wrapper (`compile`)
    library: str | os.PathLike[str] | None = None
    step: int = 0  # steps completed
    saved_step: int | None = None  # the step of this run's checkpoint on disk, if any
    loss: float = float("nan")
    random_states: dict[str, torch.Tensor] = field(default_factory=dict)  # as they were after `step`

    @property
    def unet(self) -> torch.nn.Module:
        return self.pipe.unet

    def denoise(self, noisy: torch.Tensor, timesteps: torch.Tensor, condition: Conditioning) -> torch.Tensor:
        """The frozen UNet's prediction; the fp32 noisy latents are cast to the UNet's dtype here, where they
        enter the model (see `precision.py`)."""
        return self.denoiser(noisy.to(self.unet.dtype), timesteps, condition.hidden,
                             added_cond_kwargs=condition.added).sample

    def states_now(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state(), "noise": self.noise_generator.get_state()}


@dataclass
class Batch:
    who: torch.Tensor  # (batch,) identity indices
    template: torch.Tensor  # (batch,) prompt template indices
    features: torch.Tensor  # face features of the chosen views
    latents: torch.Tensor  # x0 of the chosen views
    ids: dict[str, torch.Tensor]  # per encoder: the prompts' token ids
    noise: torch.Tensor
    timesteps: torch.Tensor
    noisy: torch.Tensor
