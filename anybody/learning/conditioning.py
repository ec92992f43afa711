"""The frozen text side of a pipeline, as its UNet reads it, with the identities' tokens swapped in per call.

What each family feeds the UNet (the same as its diffusers pipeline does):
- SD 1.x and 2.x: the one text encoder's last hidden state;
- SDXL: the penultimate hidden states of both encoders side by side, plus `added_cond_kwargs`: the
  second encoder's pooled projection ("text_embeds") and the size and crop numbers ("time_ids").
An identity owns new tokens in every text encoder; each encoder gets its own rows (its own width), put
in through a `TokenInjection` so that gradients reach whatever made them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline

from anybody.identity.tokens import TokenInjection, install_tokens
from anybody.models import model_family, text_encoders


@dataclass
class Conditioning:
    """What the UNet is called with besides the noisy latents and the timesteps."""

    hidden: torch.Tensor  # (batch, length, width): encoder_hidden_states
    added: dict[str, torch.Tensor] | None = None  # SDXL's added_cond_kwargs

    def select(self, rows: torch.Tensor) -> Conditioning:
        added = None if self.added is None else {key: value[rows] for key, value in self.added.items()}
        return Conditioning(self.hidden[rows], added)


class PromptEncoder:
    """Encode prompts with every text encoder of `pipe`, the identities' tokens taken from the caller.

    `identity_tokens` lists each identity's token strings; they are added to every tokenizer and text
    encoder with `initial_rows[encoder]` ((tokens, width)) as their table rows. `remove()` takes the hooks away.
    """

    def __init__(self, pipe: DiffusionPipeline, identity_tokens: Sequence[Sequence[str]],
                 initial_rows: dict[str, torch.Tensor], resolution: int) -> None:
        self.encoders = text_encoders(pipe)
        self.sdxl = model_family(pipe) == "sdxl"
        self.identities = len(identity_tokens)
        self.injections: dict[str, TokenInjection] = {}
        for name, tokenizer, encoder in self.encoders:
            table = encoder.get_input_embeddings().weight
            ids = [install_tokens(tokenizer, encoder, tokens, initial_rows[name].to(table.dtype))
                   for tokens in identity_tokens]
            self.injections[name] = TokenInjection(encoder, [i for own in ids for i in own])
        # SDXL's micro-conditioning: original size, crop top-left, target size (what the pipeline passes).
        self.time_ids = torch.tensor([resolution, resolution, 0, 0, resolution, resolution], dtype=torch.float32)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.encoders]

    def tokenize(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Each encoder's token ids of the prompts, padded to the encoder's length (its own pad token)."""
        return {name: tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids
                for name, tokenizer, _ in self.encoders}

    def __call__(self, ids: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor] | None = None) -> Conditioning:
        """The conditioning of the prompts `ids`, with `tokens[encoder]` ((batch, n, width)) as every
        identity's rows (each prompt names only its own identity), or the installed rows when None."""
        hidden, pooled = [], None
        for name, _, encoder in self.encoders:
            injection = self.injections[name]
            injection.values = None if tokens is None else tokens[name].repeat(1, self.identities, 1)
            try:
                ids_ = ids[name].to(encoder.device)
                if not self.sdxl:
                    hidden.append(encoder(ids_)[0])
                    continue
                output = encoder(ids_, output_hidden_states=True)
                hidden.append(output.hidden_states[-2])
                pooled = output[0]  # the last encoder's projection: (batch, width)
            finally:
                injection.values = None
        if not self.sdxl:
            return Conditioning(hidden[0])
        batch = hidden[0].shape[0]
        time_ids = self.time_ids.to(hidden[0].device, hidden[0].dtype).expand(batch, -1)
        return Conditioning(torch.cat(hidden, dim=-1), {"text_embeds": pooled, "time_ids": time_ids})

    def remove(self) -> None:
        for injection in self.injections.values():
            injection.remove()
