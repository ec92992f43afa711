"""SeFi-IDE's per-stage key and value tokens, made by one small module from the word "person".

One initial token (the embedding of "person") plus a learned slot embedding per (stage, key/value) passes
through two self-attention layers and one feed-forward layer, all residual: S stages × (key token, value
token). The output projections start at zero, so every token starts as "person" and learning moves them
apart. Only this module is trained; the tokens it gives are what the identity file keeps.
"""

from __future__ import annotations

import torch
from torch import nn


class StageTokenGenerator(nn.Module):
    """() → (stages, 2, tokens, width): index [:, 0] are the key tokens, [:, 1] the value tokens."""

    def __init__(self, initial: torch.Tensor, stages: int = 5, tokens: int = 1) -> None:
        super().__init__()
        width = initial.shape[-1]
        self.stages, self.tokens = stages, tokens
        self.register_buffer("initial", initial.detach().float().reshape(1, width).clone())
        scale = float(initial.float().norm()) / width**0.5
        self.slots = nn.Parameter(torch.randn(stages * 2 * tokens, width) * 1e-2 * scale)
        heads = next(h for h in (8, 4, 2, 1) if width % h == 0)
        self.attention = nn.ModuleList(nn.MultiheadAttention(width, heads, batch_first=True) for _ in range(2))
        self.attention_norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(2))
        self.feed_forward = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.GELU(),
                                          nn.Linear(4 * width, width))
        for layer in self.attention:
            nn.init.zeros_(layer.out_proj.weight)
            nn.init.zeros_(layer.out_proj.bias)
        nn.init.zeros_(self.feed_forward[-1].weight)
        nn.init.zeros_(self.feed_forward[-1].bias)

    def forward(self) -> torch.Tensor:
        hidden = (self.initial + self.slots).unsqueeze(0)
        for norm, attention in zip(self.attention_norms, self.attention):
            normed = norm(hidden)
            hidden = hidden + attention(normed, normed, normed, need_weights=False)[0]
        hidden = hidden + self.feed_forward(hidden)
        return hidden.reshape(self.stages, 2, self.tokens, -1)
