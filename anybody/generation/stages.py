"""Per-stage key and value tokens (SeFi-IDE) inside an ordinary diffusers pipeline call.

A SeFi identity has S pairs of tokens, one per fifth of the noise schedule, and a cross-attention whose
keys come from one encoding of the prompt and values from another. `StageSwitch` makes a plain
`pipe(prompt)` do that, through public hooks only (no library code changed):
- anybody's cross-attention processors are installed on the UNet (`anybody.attention.install`);
- a forward hook on the text encoder notices prompts that hold a SeFi identity's token and encodes them
  once more per stage, with the stage's key tokens and with its value tokens;
- a forward pre-hook on the UNet reads the timestep, finds the rows of `encoder_hidden_states` that are
  such a prompt, and hands the processors that stage's key and value encodings.
Rows of other prompts (the negative prompt, prompts without the identity) pass through unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from anybody.attention import AttentionStore, CrossAttentionProcessor, install
from anybody.attention.layers import cross_attention_modules
from anybody.identity import Identity, token_strings
from anybody.identity.stages import stage_of
from anybody.identity.tokens import TokenInjection


@dataclass
class _Encoded:
    plain: torch.Tensor  # (tokens, width): the encoding the pipeline itself made
    keys: torch.Tensor  # (stages, tokens, width)
    values: torch.Tensor  # (stages, tokens, width)


class StageSwitch:
    """Installed by `anybody.apply` for identities with per-stage tokens; `remove()` undoes it."""

    def __init__(self, pipe: object, identities: Sequence[Identity]) -> None:
        self.pipe = pipe
        self.identities = [identity for identity in identities if identity.stages]
        self.stages = self.identities[0].stages
        self.total = int(pipe.scheduler.config.get("num_train_timesteps", 1000))
        tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
        self.ids = [tokenizer.convert_tokens_to_ids(token_strings(i.name, i.token_count)) for i in self.identities]
        self.injection = TokenInjection(encoder, [token for ids in self.ids for token in ids])
        self.recent: deque[_Encoded] = deque(maxlen=32)
        self._busy = False
        self.store = AttentionStore()
        self.processors = install(pipe.unet, self.store)
        self._cross_attention = [module for _, module in cross_attention_modules(pipe.unet)]
        self._hooks = [
            encoder.register_forward_hook(self._after_text_encoder, with_kwargs=True),
            pipe.unet.register_forward_pre_hook(self._before_unet, with_kwargs=True),
        ]

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self.injection.remove()
        self.processors.remove()

    def _stage_tokens(self, stage: int, which: str) -> torch.Tensor:
        parts = [(i.stage_keys if which == "keys" else i.stage_values)["text_encoder"][stage] for i in self.identities]
        return torch.cat(parts)

    def _after_text_encoder(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        if self._busy:
            return
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            return
        wanted = torch.tensor([token for ids in self.ids for token in ids], device=input_ids.device)
        rows = torch.isin(input_ids, wanted).any(dim=-1)
        if not rows.any():
            return
        plain, prompts = output[0], input_ids[rows]
        variants = [self._stage_tokens(stage, which) for which in ("keys", "values") for stage in range(self.stages)]
        self._busy = True
        try:  # every stage's key and value encoding in one batched pass: (2 * stages * prompts, length, width)
            with torch.no_grad():
                self.injection.values = torch.stack(variants).repeat_interleave(len(prompts), dim=0)
                encoded = module(prompts.repeat(len(variants), 1))[0]
        finally:
            self.injection.values = None
            self._busy = False
        encoded = encoded.reshape(2, self.stages, len(prompts), *encoded.shape[1:]).transpose(1, 2)
        keys, values = encoded[0], encoded[1]  # (prompts, stages, length, width)
        for index, row in enumerate(rows.nonzero().flatten().tolist()):
            self.recent.append(_Encoded(plain[row].detach(), keys[index], values[index]))

    def _current_store(self) -> AttentionStore:
        """The store of the processors installed now (a heatmap recorder may have replaced ours)."""
        for module in self._cross_attention:
            if isinstance(module.processor, CrossAttentionProcessor):
                return module.processor.store
        return self.store

    def _before_unet(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        store = self._current_store()
        store.key_states = store.value_states = None
        if timestep is None or states is None or not self.recent:
            return
        stage = int(stage_of(torch.as_tensor(timestep).reshape(-1)[:1].cpu(), self.stages, self.total)[0])
        keys, values, found = states.clone(), states.clone(), False
        for row in range(states.shape[0]):
            match = next((e for e in self.recent if e.plain.shape == states[row].shape
                          and torch.equal(e.plain.to(states.device, states.dtype), states[row])), None)
            if match is not None:
                keys[row] = match.keys[stage].to(states)
                values[row] = match.values[stage].to(states)
                found = True
        if found:
            store.key_states, store.value_states = keys, values
