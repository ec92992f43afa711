"""What each method trains, behind one interface the training loop calls every step.

`learner(features, who, timesteps)` gives the identity tokens of each batch element as (keys, values),
each (batch, tokens, width): the text encoder is run with `keys` for the cross-attention keys and with
`values` for the values. Celeb Basis returns the same tensor twice; SeFi-IDE its stage's pair.
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


class CelebBasisLearner(nn.Module):
    """Face features → MLP → coefficients → mean + c·B: two tokens in the celeb basis."""

    method = "celeb-basis"
    tokens = 2
    templates = CELEB_BASIS_TEMPLATES

    def __init__(self, basis: CelebBasis, feature_dim: int, depth: int = 1) -> None:
        super().__init__()
        self.basis = basis
        self.mapper = CoefficientMapper(feature_dim, basis.rank, self.tokens, depth)
        self.last_coefficients: torch.Tensor | None = None

    @staticmethod
    def phrase(tokens: Sequence[str], class_word: str) -> str:
        return f"face of {' '.join(tokens)} {class_word}"

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self.last_coefficients = self.mapper(features)  # (batch, tokens, k), each row of unit norm
        embeddings = self.basis.embeddings(self.last_coefficients)
        return embeddings, embeddings


class StageTokenLearner(nn.Module):
    """One `StageTokenGenerator` per identity: S stages × (key, value) tokens, picked by timestep."""

    method = "sefi"
    tokens = 1
    templates = SEFI_TEMPLATES
    last_coefficients = None

    def __init__(self, initial: torch.Tensor, identities: int, stages: int = 5, total_timesteps: int = 1000) -> None:
        super().__init__()
        self.generators = nn.ModuleList(StageTokenGenerator(initial, stages, self.tokens) for _ in range(identities))
        self.stages, self.total_timesteps = stages, total_timesteps

    @staticmethod
    def phrase(tokens: Sequence[str], class_word: str) -> str:
        return " ".join(tokens)

    def all_tokens(self) -> torch.Tensor:
        """(identities, stages, 2, tokens, width)."""
        return torch.stack([generator() for generator in self.generators])

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        everything = self.all_tokens()
        stage = stage_of(timesteps, self.stages, self.total_timesteps).to(everything.device)
        chosen = everything[who.to(everything.device), stage]  # (batch, 2, tokens, width)
        return chosen[:, 0], chosen[:, 1]
