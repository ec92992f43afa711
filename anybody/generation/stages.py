"""Per-stage key and value tokens (SeFi-IDE) inside an ordinary diffusers pipeline call.

A SeFi identity has S pairs of tokens, one per fifth of the noise schedule, and a cross-attention whose
keys come from one encoding of the prompt and values from another. `StageSwitch` makes a plain
`pipe(prompt)` do that, through public hooks only (no library code changed):
- anybody's cross-attention processors are installed on the UNet (`anybody.attention.install`);
- a forward hook on each text encoder keeps the prompts that hold a SeFi identity's token, with every
  layer the pipeline may have taken from that encoder (SD 1.x/2.x: the last hidden state; SDXL: the
  penultimate one, or another with `clip_skip`);
- a forward pre-hook on the UNet reads the timestep, finds the rows of `encoder_hidden_states` made from
  such a prompt (for SDXL: both encoders' columns side by side), encodes that prompt once per stage with
  the stage's key tokens and with its value tokens (one batched pass, cached), and hands the processors
  that stage's key and value encodings. SDXL's pooled embedding of those rows becomes the stage's value
  encoding's, as in learning.
Rows of other prompts (the negative prompt, prompts without the identity) pass through unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from anybody.attention import AttentionStore, CrossAttentionProcessor, install
from anybody.attention.layers import cross_attention_modules
from anybody.identity import Identity, token_strings
from anybody.identity.stages import stage_of
from anybody.identity.tokens import TokenInjection
from anybody.models import text_encoders

LAST = "last"  # the encoder's final output (after its last layer norm), as opposed to a hidden-state index


@dataclass
class _Prompt:
    """One prompt one text encoder was called with, and what the pipeline may have taken from it."""

    encoder: str
    ids: torch.Tensor  # (length,)
    layers: dict[str | int, torch.Tensor]  # LAST or a hidden-state index → (length, width)
    stages: dict[str | int, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)


class StageSwitch:
    """Installed by `anybody.apply` for identities with per-stage tokens; `remove()` undoes it."""

    def __init__(self, pipe: object, identities: Sequence[Identity]) -> None:
        self.pipe = pipe
        self.identities = [identity for identity in identities if identity.stages]
        self.stages = self.identities[0].stages
        self.total = int(pipe.scheduler.config.get("num_train_timesteps", 1000))
        self.encoders = {name: encoder for name, _, encoder in text_encoders(pipe)}
        self.widths = [encoder.get_input_embeddings().weight.shape[1] for encoder in self.encoders.values()]
        self.ids: dict[str, list[int]] = {}
        self.injections: dict[str, TokenInjection] = {}
        self._hooks = []
        for name, tokenizer, encoder in text_encoders(pipe):
            self.ids[name] = [token for i in self.identities
                              for token in tokenizer.convert_tokens_to_ids(token_strings(i.name, i.token_count))]
            self.injections[name] = TokenInjection(encoder, self.ids[name])
            self._hooks.append(encoder.register_forward_hook(self._recorder(name), with_kwargs=True))
        self.recent: deque[_Prompt] = deque(maxlen=8)
        self._busy = False
        self.store = AttentionStore()
        self.processors = install(pipe.unet, self.store)
        self._cross_attention = [module for _, module in cross_attention_modules(pipe.unet)]
        self._hooks.append(pipe.unet.register_forward_pre_hook(self._before_unet, with_kwargs=True))

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        for injection in self.injections.values():
            injection.remove()
        self.processors.remove()

    def _recorder(self, encoder: str):
        def record(module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
            if self._busy:
                return
            input_ids = kwargs.get("input_ids", args[0] if args else None)
            if input_ids is None:
                return
            rows = torch.isin(input_ids, torch.tensor(self.ids[encoder], device=input_ids.device)).any(dim=-1)
            hidden_states = getattr(output, "hidden_states", None) or ()
            for row in rows.nonzero().flatten().tolist():
                layers: dict[str | int, torch.Tensor] = {index: states[row].detach()
                                                         for index, states in enumerate(hidden_states)}
                if output[0].dim() == 3:
                    layers[LAST] = output[0][row].detach()
                self.recent.append(_Prompt(encoder, input_ids[row].detach(), layers))
        return record

    def _stage_tokens(self, encoder: str, stage: int, which: str) -> torch.Tensor:
        parts = [(i.stage_keys if which == "keys" else i.stage_values)[encoder][stage] for i in self.identities]
        return torch.cat(parts)

    def _stage_encodings(self, prompt: _Prompt, layer: str | int) -> tuple[torch.Tensor, torch.Tensor, object]:
        """(keys, values) of every stage, each (stages, length, width), and the values' pooled output."""
        if layer not in prompt.stages:
            encoder = self.encoders[prompt.encoder]
            variants = [self._stage_tokens(prompt.encoder, stage, which)
                        for which in ("keys", "values") for stage in range(self.stages)]
            injection = self.injections[prompt.encoder]
            self._busy = True
            try:  # every stage's key and value encoding in one batched pass
                with torch.no_grad():
                    injection.values = torch.stack(variants)
                    output = encoder(prompt.ids.repeat(len(variants), 1), output_hidden_states=layer != LAST)
            finally:
                injection.values = None
                self._busy = False
            encoded = (output[0] if layer == LAST else output.hidden_states[layer]).reshape(
                2, self.stages, *prompt.ids.shape, -1)
            pooled = output[0][self.stages :] if output[0].dim() == 2 else None  # the value variants' projection
            prompt.stages[layer] = (encoded[0], encoded[1], pooled)
        return prompt.stages[layer]

    def _find(self, row: torch.Tensor) -> list[tuple[_Prompt, str | int]] | None:
        """For each text encoder, the recorded prompt and layer that made its columns of this row."""
        found, start = [], 0
        for name, width in zip(self.encoders, self.widths):
            columns = row[..., start : start + width]
            start += width
            match = next(((prompt, layer) for prompt in reversed(self.recent) if prompt.encoder == name
                          for layer, states in prompt.layers.items()
                          if states.shape == columns.shape and torch.equal(states.to(columns), columns)), None)
            if match is None:
                return None
            found.append(match)
        return found if start == row.shape[-1] else None

    def _current_store(self) -> AttentionStore:
        """The store of the processors installed now (a heatmap recorder may have replaced ours)."""
        for module in self._cross_attention:
            if isinstance(module.processor, CrossAttentionProcessor):
                return module.processor.store
        return self.store

    def _before_unet(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        store = self._current_store()
        store.key_states = store.value_states = None
        if timestep is None or states is None or not self.recent:
            return None
        stage = int(stage_of(torch.as_tensor(timestep).reshape(-1)[:1].cpu(), self.stages, self.total)[0])
        keys, values = states.clone(), states.clone()
        added = dict(kwargs.get("added_cond_kwargs") or {})
        pooled = added["text_embeds"].clone() if "text_embeds" in added else None
        found = False
        for row in range(states.shape[0]):
            sources = self._find(states[row])
            if sources is None:
                continue
            encodings = [self._stage_encodings(prompt, layer) for prompt, layer in sources]
            keys[row] = torch.cat([key[stage] for key, _, _ in encodings], dim=-1).to(states)
            values[row] = torch.cat([value[stage] for _, value, _ in encodings], dim=-1).to(states)
            if pooled is not None and encodings[-1][2] is not None:
                pooled[row] = encodings[-1][2][stage].to(pooled)
            found = True
        if not found:
            return None
        store.key_states, store.value_states = keys, values
        if pooled is None:
            return None
        added["text_embeds"] = pooled
        return args, {**kwargs, "added_cond_kwargs": added}
