"""The interface between the learning loop and a method: everything that differs between methods.

Every step the loop calls `learner(features, who, timesteps)` and gets the identity tokens of each batch
element as (keys, values), each {text encoder: (batch, tokens, width)}: the text encoders run with `keys`
for the cross-attention keys and with `values` for the values (the same tensors unless the method has
`separate_values`, as SeFi-IDE does). Models with two text encoders (SDXL) get tokens for each, of its
own width. At the end `write_identity` puts what the method learned into each identity file.

The layers, from the bottom: a method's facts (`spec.py`, `methods/<method>/__init__.py`) → the learning
settings built from them (`anybody.learning.config`) → the learners built from those settings (here and
`methods/<method>/learner.py`) → the loop (`anybody.learning.train`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from anybody.identity import Identity
    from anybody.learning.config import LearnConfig
    from anybody.methods.spec import Method

Tokens = dict[str, torch.Tensor]
FUSED_DEVICES = ("cuda", "cpu", "mps", "xpu")  # torch.optim.Adam(W)(fused=True) runs there


@dataclass
class LearnerContext:
    """What a learner may build from: the frozen model's text side and the size of the problem."""

    tokenizers: dict[str, object]  # {text encoder: its tokenizer}
    tables: dict[str, torch.Tensor]  # {text encoder: its frozen token-embedding table}
    feature_dim: int  # width of the face features
    identities: int  # how many identities learn together
    total_timesteps: int  # the noise schedule's training timesteps

    def word_rows(self, word: str) -> Tokens:
        """{encoder: (width,)}: an fp32 copy of the first token of `word` in each table (the tables are
        written to later, when the identities' tokens are installed)."""
        return {encoder: self.tables[encoder][tokenizer(word, add_special_tokens=False).input_ids[0]]
                .detach().float().clone() for encoder, tokenizer in self.tokenizers.items()}


class Learner(nn.Module):
    """A method's trainable part. Subclasses set `templates`, and `tokens` (per identity and encoder)."""

    tokens: int
    templates: ClassVar[tuple[str, ...]]
    separate_values: ClassVar[bool] = False  # keys and values differ: the loop runs the encoders twice

    @classmethod
    def create(cls, config: LearnConfig, context: LearnerContext) -> Learner:
        raise NotImplementedError

    def phrase(self, tokens: Sequence[str], class_word: str) -> str:
        """What stands for the identity in the templates; "face of <id> <id>_1 person" by default."""
        return f"face of {' '.join(tokens)} {class_word}"

    def prompts(self, tokens: Sequence[str], class_word: str) -> list[str]:
        return [template.format(self.phrase(tokens, class_word)) for template in self.templates]

    def initial_rows(self) -> Tokens:
        """{encoder: (tokens, width)}: the table rows the identities' new tokens start with."""
        raise NotImplementedError

    def make_optimizer(self, config: LearnConfig) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=config.learning_rate, **self.optimizer_kernel())

    def optimizer_kernel(self) -> dict[str, bool]:
        """Adam's one fused kernel where PyTorch has it for the learner's device (CUDA, CPU, MPS, XPU: 3x faster
        than foreach on the CPU, see BENCHMARKS.md, and it lets fp16's loss scale skip a step without a wait
        for the device), else the multi-tensor (foreach) one. Call after the learner is on its device."""
        device = next(self.parameters()).device
        return {"fused": True} if device.type in FUSED_DEVICES else {"foreach": True}

    def forward(self, features: torch.Tensor, who: torch.Tensor, timesteps: torch.Tensor) -> tuple[Tokens, Tokens]:
        raise NotImplementedError

    def after_step(self, who: torch.Tensor) -> None:
        """Called after each optimizer step with the batch's identity indices (for running averages)."""

    @torch.no_grad()
    def write_identity(self, identity: Identity, index: int, features: torch.Tensor) -> None:
        """Put identity `index`'s learned tokens (and whatever else the method keeps) into `identity`;
        `features` are the face features of all its views."""
        raise NotImplementedError

    def metadata(self) -> dict[str, str]:
        """Method facts for every identity file (e.g. the basis hashes, the stage count)."""
        return {}

    def recipe(self) -> dict[str, object]:
        """What a resumed run must share with the interrupted one beyond the config (e.g. the basis)."""
        return {}


def learner_class(method: Method) -> type[Learner]:
    """The method's `Learner` class, imported now (its module needs torch, and may need more)."""
    module, _, name = method.learner.partition(":")
    return getattr(import_module(module), name)
