"""The cross-attention side of a learning step: separate key and value encodings, and the attention loss.

Methods with `separate_values` (SeFi-IDE) run the text encoders twice per step, once with the key tokens
(the UNet's argument, feeding the keys) and once with the value tokens (given to anybody's attention
processors, feeding the values). With an attention-loss weight λ > 0 the same processors also record the
identity prompt's maps at one level and score the reference prompt ("... person" in place of each
identity token) against the same queries; the loss is λ × the MSE between the two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from diffusers import DiffusionPipeline

from anybody.attention import (
    AttentionStore,
    face_attention_loss,
    install,
    prompt_length,
    resolution_for,
    token_positions,
)
from anybody.learning.conditioning import Conditioning, PromptEncoder
from anybody.methods.learner import Learner, Tokens


class AttentionTerm:
    """Turns a step's (keys, values) into the UNet's conditioning, and gives the step's attention loss."""

    def __init__(self, pipe: DiffusionPipeline, text: PromptEncoder, learner: Learner, identity_tokens:
                 Sequence[Sequence[str]], resolution: int, *, weight: float, tokens: str, level: int,
                 class_word: str) -> None:
        self.text, self.weight, self.tokens = text, weight, tokens
        self.store: AttentionStore | None = None
        if weight <= 0 and not learner.separate_values:
            return  # plain text conditioning: no processors needed
        recorded = resolution_for(pipe.unet, resolution // pipe.vae_scale_factor, level) if weight > 0 else None
        self.store = AttentionStore(recorded, keep_grad=True)
        reference = learner.prompts([class_word] * learner.tokens, class_word)
        with torch.no_grad():
            self.reference_text = text(text.tokenize(reference)).hidden
        # Per identity and template: (the identity's token positions, the prompt's length), for options #1/#2.
        self.prompt_facts = [[(token_positions(pipe.tokenizer, prompt, own), prompt_length(pipe.tokenizer, prompt))
                              for prompt in learner.prompts(own, class_word)] for own in identity_tokens]

    @contextlib.contextmanager
    def installed(self, unet: torch.nn.Module) -> Iterator[None]:
        """anybody's processors on the UNet's cross-attention layers while learning (if needed)."""
        with install(unet, self.store) if self.store is not None else contextlib.nullcontext():
            yield

    def condition(self, ids: dict[str, torch.Tensor], keys: Tokens, values: Tokens, template: torch.Tensor,
                  *, record: bool = True) -> Conditioning:
        """The UNet's conditioning with the key tokens; the value tokens' encoding goes to the processors.

        With separate value tokens the pooled SDXL embedding is the value encoding's, as at generation time.
        `record=False` computes without recording maps (a teacher's prediction is not part of the loss).
        """
        condition = self.text(ids, keys)
        store = self.store
        if store is None:
            return condition
        store.value_states = None
        if values is not keys:
            by_values = self.text(ids, values)
            store.value_states, condition.added = by_values.hidden, by_values.added
        store.clear()
        recording = record and store.resolution is not None
        store.reference_states = self.reference_text[template.to(self.reference_text.device)] if recording else None
        store.recording = recording
        return condition

    def loss(self, who: torch.Tensor, template: torch.Tensor) -> torch.Tensor | float:
        """λ × the face-wise attention loss of the step's UNet call (0 without the loss)."""
        if self.store is None or self.weight <= 0:
            return 0.0
        store = self.store
        if self.tokens == "all":
            return self.weight * face_attention_loss(store.reference_maps(), store.target_maps()).float()
        losses = []
        for row, (identity, chosen) in enumerate(zip(who.tolist(), template.tolist())):
            positions, length = self.prompt_facts[identity][chosen]
            rows = [slice(row * record.heads, (row + 1) * record.heads) for record in store.records]
            losses.append(face_attention_loss([r.reference[s] for r, s in zip(store.records, rows)],
                                              [r.probabilities[s] for r, s in zip(store.records, rows)], self.tokens,
                                              identity_positions=positions, prompt_length=length))
        return self.weight * torch.stack(losses).mean().float()
