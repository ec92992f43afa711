"""What the UNet's prediction is compared with in a learning step.

`denoising_target` is the ordinary objective: the sampled noise (or the velocity, for v-prediction
models). `teacher_target` distils instead: the frozen model's own prediction with known identities'
tokens in place of the learned ones. That turns "did learning find the person?" into a measurable
question (how close the learned tokens get to the planted ones), which the recovery tests and the
evaluation's synthetic task ask of every method.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDPMScheduler

from anybody.errors import misuse
from anybody.identity import Identity
from anybody.identity.stages import tokens_at
from anybody.learning.run import Batch, Run

Target = Callable[[Batch], torch.Tensor]


def denoising_target(noise_schedule: DDPMScheduler) -> Target:
    """The noise the batch was made with, or the velocity for a v-prediction model."""
    def target(batch: Batch) -> torch.Tensor:
        if noise_schedule.config.prediction_type == "v_prediction":
            return noise_schedule.get_velocity(batch.latents, batch.noise, batch.timesteps)
        return batch.noise
    return target


def teacher_target(run: Run, teacher: dict[str, Identity]) -> Target:
    """The frozen model's prediction with each teacher identity's tokens (its stage's pair, for SeFi)."""
    missing = [name for name in run.names if name not in teacher]
    if missing:
        raise misuse(f"The teacher has no identity for {', '.join(missing)}", "Give one per identity")

    @torch.no_grad()
    def target(batch: Batch) -> torch.Tensor:
        keys, values = {}, {}
        for encoder in run.text.names:
            pairs = [tokens_at(teacher[run.names[i]], batch.timesteps[row : row + 1].cpu(), encoder)
                     for row, i in enumerate(batch.who.tolist())]
            keys[encoder] = torch.cat([key for key, _ in pairs]).to(batch.noisy.device)
            values[encoder] = torch.cat([value for _, value in pairs]).to(batch.noisy.device)
        condition = run.attention.condition(batch.ids, keys, values, batch.template, record=False)
        return run.denoise(batch.noisy, batch.timesteps, condition)
    return target
