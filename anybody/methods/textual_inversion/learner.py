"""Textual Inversion's learner: each identity's token vectors are themselves the parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from anybody.identity import Identity
from anybody.methods.celeb_basis import TEMPLATES
from anybody.methods.learner import Learner, LearnerContext, Tokens

if TYPE_CHECKING:
    from anybody.learning.config import LearnConfig


class TokenVectorLearner(Learner):
    """`tokens` free vectors per identity and text encoder, all started from the class word's row. Face
    features are not used: this is the baseline that learns the person from the pictures alone."""

    templates = TEMPLATES  # Celeb Basis's prompts, so the two differ only in what learns

    def __init__(self, initial: Tokens, identities: int, tokens: int = 2) -> None:
        super().__init__()
        self.tokens = tokens
        self.vectors = nn.ParameterDict({
            encoder: nn.Parameter(row.expand(identities, tokens, -1).clone()) for encoder, row in initial.items()})

    @classmethod
    def create(cls, config: LearnConfig, context: LearnerContext) -> TokenVectorLearner:
        return cls(context.word_rows(config.class_word), context.identities, config.tokens)

    def initial_rows(self) -> Tokens:
        return {encoder: vectors[0].detach() for encoder, vectors in self.vectors.items()}

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor) -> tuple[Tokens, Tokens]:
        chosen = {encoder: vectors[who.to(vectors.device)] for encoder, vectors in self.vectors.items()}
        return chosen, chosen

    @torch.no_grad()
    def write_identity(self, identity: Identity, index: int, features: torch.Tensor) -> None:
        for encoder, vectors in self.vectors.items():
            identity.encoder_embeddings[encoder] = vectors[index].float().cpu().clone()
