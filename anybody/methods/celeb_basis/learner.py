"""Celeb Basis's learner: face features → one MLP per text encoder → coefficients → mean + c·B."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from anybody.basis import CelebBasis, build_basis
from anybody.identity import Identity
from anybody.methods.celeb_basis import TEMPLATES
from anybody.methods.celeb_basis.mapper import CoefficientMapper
from anybody.methods.learner import Learner, LearnerContext, Tokens

if TYPE_CHECKING:
    from anybody.learning.config import LearnConfig


class CelebBasisLearner(Learner):
    """Two tokens in each celeb basis. The final coefficients are the mean over the identity's views, or
    the paper's running average (momentum 0.99) of the normalised coefficients seen in training."""

    tokens = 2
    templates = TEMPLATES

    def __init__(self, bases: dict[str, CelebBasis], feature_dim: int, identities: int = 1, depth: int = 1,
                 average: str = "views", momentum: float = 0.99) -> None:
        super().__init__()
        self.bases = bases
        self.mappers = nn.ModuleDict({encoder: CoefficientMapper(feature_dim, basis.rank, self.tokens, depth)
                                      for encoder, basis in bases.items()})
        self.average, self.momentum = average, momentum
        for encoder, basis in bases.items():  # running averages live in the state, so checkpoints keep them
            self.register_buffer(f"average_{encoder}", torch.zeros(identities, self.tokens, basis.rank))
        self.register_buffer("average_seen", torch.zeros(identities, dtype=torch.bool))
        self.last_coefficients: Tokens = {}

    @classmethod
    def create(cls, config: LearnConfig, context: LearnerContext) -> CelebBasisLearner:
        bases = {encoder: build_basis(tokenizer, context.tables[encoder], options=config.basis)
                 for encoder, tokenizer in context.tokenizers.items()}
        return cls(bases, context.feature_dim, context.identities, config.mapper_depth, config.coefficient_average,
                   config.ema_momentum)

    def initial_rows(self) -> Tokens:
        return {encoder: basis.mean for encoder, basis in self.bases.items()}

    def coefficients(self, features: torch.Tensor) -> Tokens:
        """{encoder: (batch, tokens, k)}, each token's row of unit norm."""
        return {encoder: mapper(features) for encoder, mapper in self.mappers.items()}

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor) -> tuple[Tokens, Tokens]:
        self.last_coefficients = self.coefficients(features)
        embeddings = {encoder: self.bases[encoder].embeddings(c) for encoder, c in self.last_coefficients.items()}
        return embeddings, embeddings

    @torch.no_grad()
    def after_step(self, who: torch.Tensor) -> None:
        """The running average of each identity's normalised coefficients, per encoder (in batch order)."""
        for row, index in enumerate(who.tolist()):
            for encoder, rows in self.last_coefficients.items():
                average, current = getattr(self, f"average_{encoder}"), rows[row].detach().float()
                moved = self.momentum * average[index] + (1 - self.momentum) * current
                average[index] = torch.where(self.average_seen[index], moved, current)  # no wait for the device
            self.average_seen[index] = True

    @torch.no_grad()
    def write_identity(self, identity: Identity, index: int, features: torch.Tensor) -> None:
        by_views = self.coefficients(features)
        for encoder, basis in self.bases.items():
            use_average = self.average == "ema" and bool(self.average_seen[index])
            final = getattr(self, f"average_{encoder}")[index] if use_average else by_views[encoder].mean(dim=0)
            identity.encoder_coefficients[encoder] = final.cpu()
            identity.encoder_embeddings[encoder] = basis.embeddings(final).cpu()

    def metadata(self) -> dict[str, str]:
        facts = {}
        for encoder, basis in self.bases.items():
            facts.update({f"basis.{encoder}": basis.key, f"basis_components.{encoder}": str(basis.rank)})
        return facts

    def recipe(self) -> dict[str, object]:
        return {"basis": {encoder: basis.key for encoder, basis in self.bases.items()}}
