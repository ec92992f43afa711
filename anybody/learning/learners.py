"""What each method trains, behind one interface the training loop calls every step.

`learner(features, who, timesteps)` gives the identity tokens of each batch element as (keys, values),
each {text encoder: (batch, tokens, width)}: the text encoders are run with `keys` for the
cross-attention keys and with `values` for the values. Celeb Basis returns the same tokens twice;
SeFi-IDE its stage's pair. Models with two text encoders (SDXL) get tokens for each, of its own width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from anybody.basis import CelebBasis
from anybody.identity.stages import stage_of
from anybody.learning.mapper import CoefficientMapper
from anybody.learning.prompts import CELEB_BASIS_TEMPLATES, SEFI_TEMPLATES
from anybody.learning.stage_tokens import StageTokenGenerator

Tokens = dict[str, torch.Tensor]


class CelebBasisLearner(nn.Module):
    """Face features → one MLP per text encoder → coefficients → mean + c·B: two tokens in each celeb basis."""

    method = "celeb-basis"
    tokens = 2
    templates = CELEB_BASIS_TEMPLATES

    def __init__(self, bases: dict[str, CelebBasis], feature_dim: int, depth: int = 1) -> None:
        super().__init__()
        self.bases = bases
        self.mappers = nn.ModuleDict({encoder: CoefficientMapper(feature_dim, basis.rank, self.tokens, depth)
                                      for encoder, basis in bases.items()})
        self.last_coefficients: Tokens = {}

    @staticmethod
    def phrase(tokens: Sequence[str], class_word: str) -> str:
        return f"face of {' '.join(tokens)} {class_word}"

    def coefficients(self, features: torch.Tensor) -> Tokens:
        """{encoder: (batch, tokens, k)}, each token's row of unit norm."""
        return {encoder: mapper(features) for encoder, mapper in self.mappers.items()}

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor) -> tuple[Tokens, Tokens]:
        self.last_coefficients = self.coefficients(features)
        embeddings = {encoder: self.bases[encoder].embeddings(c) for encoder, c in self.last_coefficients.items()}
        return embeddings, embeddings


class StageTokenLearner(nn.Module):
    """Per identity and text encoder a `StageTokenGenerator`: S stages × (key, value) tokens, picked by timestep."""

    method = "sefi"
    tokens = 1
    templates = SEFI_TEMPLATES

    def __init__(self, initial: dict[str, torch.Tensor], identities: int, stages: int = 5,
                 total_timesteps: int = 1000) -> None:
        super().__init__()
        self.last_coefficients: Tokens = {}  # no coefficients: the tokens themselves are learned
        self.generators = nn.ModuleList(
            nn.ModuleDict({encoder: StageTokenGenerator(row, stages, self.tokens) for encoder, row in initial.items()})
            for _ in range(identities))
        self.stages, self.total_timesteps = stages, total_timesteps

    @staticmethod
    def phrase(tokens: Sequence[str], class_word: str) -> str:
        return " ".join(tokens)

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
