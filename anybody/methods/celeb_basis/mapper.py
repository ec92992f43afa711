"""The only trained part of Celeb Basis: a small MLP from face features to basis coefficients.

Paper defaults: one linear layer, features → tokens × k, LeakyReLU(0.2), weights N(0, 1), bias 0; deeper
variants add residual k·tokens → k·tokens layers with LayerNorm. Each token's k coefficients are then
L2-normalised, so with an orthonormal basis each token's offset from the celebrity mean has norm 1.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(width, width)
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.activation(self.linear(self.norm(hidden)))


class CoefficientMapper(nn.Module):
    """(batch, feature_dim) face features → (batch, tokens, k) unit-norm coefficients per token."""

    def __init__(self, feature_dim: int, rank: int, tokens: int = 2, depth: int = 1) -> None:
        super().__init__()
        self.tokens, self.rank = tokens, rank
        self.first = nn.Linear(feature_dim, tokens * rank)
        nn.init.normal_(self.first.weight, 0.0, 1.0)
        nn.init.zeros_(self.first.bias)
        self.activation = nn.LeakyReLU(0.2)
        self.blocks = nn.Sequential(*(ResidualBlock(tokens * rank) for _ in range(depth - 1)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = nn.functional.normalize(features.float(), dim=-1)
        hidden = self.blocks(self.activation(self.first(features)))
        coefficients = hidden.view(*hidden.shape[:-1], self.tokens, self.rank)
        return nn.functional.normalize(coefficients, dim=-1)
