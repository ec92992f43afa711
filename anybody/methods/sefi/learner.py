"""SeFi-IDE's learner: per identity and text encoder a `StageTokenGenerator`, S stages × (key, value)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from anybody.identity import Identity
from anybody.identity.stages import stage_of
from anybody.methods.learner import Learner, LearnerContext, Tokens
from anybody.methods.sefi import TEMPLATES
from anybody.methods.sefi.stage_tokens import StageTokenGenerator

if TYPE_CHECKING:
    from anybody.learning.config import LearnConfig


class StageTokenLearner(Learner):
    """One token per identity and encoder, with its own key and value per denoising stage, picked by timestep."""

    tokens = 1
    templates = TEMPLATES
    separate_values = True

    def __init__(self, initial: Tokens, identities: int, stages: int = 5, total_timesteps: int = 1000) -> None:
        super().__init__()
        self.initial = initial
        self.generators = nn.ModuleList(
            nn.ModuleDict({encoder: StageTokenGenerator(row, stages, self.tokens) for encoder, row in initial.items()})
            for _ in range(identities))
        self.stages, self.total_timesteps = stages, total_timesteps

    @classmethod
    def create(cls, config: LearnConfig, context: LearnerContext) -> StageTokenLearner:
        return cls(context.word_rows(config.class_word), context.identities, config.stages, context.total_timesteps)

    def phrase(self, tokens: Sequence[str], class_word: str) -> str:
        return " ".join(tokens)

    def initial_rows(self) -> Tokens:
        return {encoder: row.expand(self.tokens, -1) for encoder, row in self.initial.items()}

    def make_optimizer(self, config: LearnConfig) -> torch.optim.Optimizer:
        # Adam, as SeFi-IDE's code
        return torch.optim.Adam(self.parameters(), lr=config.learning_rate, **self.optimizer_kernel())

    def identity_tokens(self, index: int) -> Tokens:
        """{encoder: (stages, 2, tokens, width)} of one identity."""
        return {encoder: generator() for encoder, generator in self.generators[index].items()}

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor) -> tuple[Tokens, Tokens]:
        everything = [self.identity_tokens(index) for index in range(len(self.generators))]
        keys, values = {}, {}
        for encoder in everything[0]:
            stacked = torch.stack([tokens[encoder] for tokens in everything])  # (identities, stages, 2, n, width)
            stage = stage_of(timesteps, self.stages, self.total_timesteps).to(stacked.device)
            chosen = stacked[who.to(stacked.device), stage]  # (batch, 2, tokens, width)
            keys[encoder], values[encoder] = chosen[:, 0], chosen[:, 1]
        return keys, values

    @torch.no_grad()
    def write_identity(self, identity: Identity, index: int, features: torch.Tensor) -> None:
        for encoder, tokens in self.identity_tokens(index).items():  # (stages, 2, tokens, width)
            tokens = tokens.float().cpu()
            identity.stage_keys[encoder], identity.stage_values[encoder] = tokens[:, 0], tokens[:, 1]
            identity.encoder_embeddings[encoder] = tokens[:, 1].mean(dim=0)
        identity.module = {key: value.cpu() for key, value in self.generators[index].state_dict().items()}

    def metadata(self) -> dict[str, str]:
        return {"stages": str(self.stages)}
