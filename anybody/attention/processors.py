"""Cross-attention processors that can record attention maps and take keys and values from two prompts.

They are installed through diffusers' public processor API (`unet.set_attn_processor`), only on the
cross-attention layers; self-attention keeps whatever processor it had. Where nothing is recorded they
use `scaled_dot_product_attention` like diffusers' own `AttnProcessor2_0`; at the recorded resolution
they compute softmax(Q K^T * scale) explicitly, because the probabilities themselves are what SeFi-IDE's
loss and the heatmaps need. With the keys and values from the same encoding both paths give diffusers'
output (to float rounding). A store with `regions` adds their logit bias to both paths (`region_masks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType

import torch
import torch.nn.functional as F
from torch.utils.hooks import RemovableHandle

from anybody.attention.layers import (
    cross_attention_modules,
)
from anybody.attention.store import AttentionStore
from anybody.errors import misuse


class CrossAttentionProcessor:
    """The processor of one cross-attention layer, steered by a shared `AttentionStore`."""

    def __init__(self, store: AttentionStore, layer: str) -> None:
        self.store = store
        self.layer = layer

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: object,
        **kwargs: object,
    ) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, query_pixels, _ = hidden_states.shape
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        store = self.store
        key_source = store.key_states if store.key_states is not None else encoder_hidden_states
        value_source = store.value_states if store.value_states is not None else encoder_hidden_states
        key_source = self._context(attn, key_source, hidden_states, "key_states")
        value_source = self._context(attn, value_source, hidden_states, "value_states")
        if key_source.shape[1] != value_source.shape[1]:
            raise misuse(f"The key encoding has {key_source.shape[1]} tokens but the value encoding "
                         f"{value_source.shape[1]}", "Encode both prompts to the same length (77 tokens)")

        heads = attn.heads
        query = self._split(attn.to_q(hidden_states), heads)
        key = self._split(attn.to_k(key_source), heads)
        value = self._split(attn.to_v(value_source), heads)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, key.shape[2], batch_size)
            attention_mask = attention_mask.view(batch_size, heads, -1, attention_mask.shape[-1])
        target_mask = attention_mask  # the reference prompt's tokens are other words: no region applies to them
        if store.regions is not None:
            bias = store.regions.bias(query_pixels, batch_size, key.shape[2], query.dtype, query.device)
            target_mask = bias if attention_mask is None else attention_mask + bias

        if store.wants(query_pixels):
            probabilities = self._probabilities(attn, query, key, target_mask)
            output = probabilities @ value
            reference = None
            if store.reference_states is not None:
                reference = self._reference(attn, query, store.reference_states, hidden_states, attention_mask)
            store.record(self.layer, heads, probabilities.flatten(0, 1), reference)
        else:
            output = F.scaled_dot_product_attention(query, key, value, attn_mask=target_mask, dropout_p=0.0,
                                                    is_causal=False, scale=attn.scale)

        output = output.transpose(1, 2).reshape(batch_size, -1, output.shape[1] * output.shape[3])
        output = attn.to_out[1](attn.to_out[0](output.to(query.dtype)))
        if input_ndim == 4:
            output = output.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            output = output + residual
        return output / attn.rescale_output_factor

    def _context(self, attn: torch.nn.Module, states: torch.Tensor | None, hidden_states: torch.Tensor,
                 what: str) -> torch.Tensor:
        """The encoding that feeds keys or values, normalised as diffusers does, with a checked batch."""
        if states is None:  # only when installed on a self-attention layer: attend to the image itself
            return hidden_states
        if states.shape[0] != hidden_states.shape[0]:
            raise misuse(
            f"store.{what} has batch {states.shape[0]} but the UNet runs batch {hidden_states.shape[0]} in "
            f"{self.layer}",
            "Give one encoding per UNet sample (with classifier-free guidance: unconditional and conditional)",
        )
        states = states.to(device=hidden_states.device, dtype=hidden_states.dtype)
        return attn.norm_encoder_hidden_states(states) if attn.norm_cross else states

    @staticmethod
    def _split(tensor: torch.Tensor, heads: int) -> torch.Tensor:
        """(batch, length, heads * dim) -> (batch, heads, length, dim)."""
        batch, length, inner = tensor.shape
        return tensor.view(batch, length, heads, inner // heads).transpose(1, 2)

    @staticmethod
    def _probabilities(attn: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                       attention_mask: torch.Tensor | None) -> torch.Tensor:
        """softmax(Q K^T * scale + mask), with the upcasting diffusers' `get_attention_scores` applies."""
        dtype = query.dtype
        if attn.upcast_attention:
            query, key = query.float(), key.float()
        scores = (query @ key.transpose(-1, -2)) * attn.scale
        if attention_mask is not None:
            scores = scores + attention_mask
        # Half-precision softmax over few tokens loses the small probabilities the loss compares: upcast.
        if attn.upcast_softmax or scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()
        return scores.softmax(dim=-1).to(dtype)

    def _reference(self, attn: torch.nn.Module, query: torch.Tensor, reference_states: torch.Tensor,
                   hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The reference prompt's maps from the same queries: a constant target, so no graph is built."""
        with torch.no_grad():
            context = self._context(attn, reference_states, hidden_states, "reference_states")
            key = self._split(attn.to_k(context), attn.heads)
            if attn.norm_k is not None:
                key = attn.norm_k(key)
            return self._probabilities(attn, query.detach(), key, attention_mask).flatten(0, 1)


class InstalledProcessors:
    """What `install` returns: the processors that were there before, put back by `remove()` or `with`."""

    def __init__(self, unet: torch.nn.Module, previous: Mapping[str, object], layer_names: list[str],
                 store: AttentionStore, hooks: Sequence[RemovableHandle] = ()) -> None:
        self.unet = unet
        self.previous = dict(previous)
        self.layer_names = layer_names
        self.store = store
        self.hooks = list(hooks)
        self.removed = False

    def remove(self) -> None:
        """Restore the previous processors, and remove the hooks `install` added (once; later calls do nothing)."""
        if not self.removed:
            self.unet.set_attn_processor(dict(self.previous))  # diffusers pops from the dict: give a copy
            for hook in self.hooks:
                hook.remove()
            self.removed = True

    def __enter__(self) -> InstalledProcessors:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.remove()


def install(unet: torch.nn.Module, store: AttentionStore) -> InstalledProcessors:
    """Give every cross-attention layer a `CrossAttentionProcessor` bound to `store`; keep the others.

    Use as `with install(unet, store): ...`, or keep the handle and call `.remove()`: the processors
    that were there before (`unet.attn_processors`) come back either way.

    With gradient checkpointing, `backward()` runs the UNet's forward again: call it while the processors
    are still installed and the store's `resolution`, `value_states`, `key_states` and
    `reference_states` unchanged (set `store.recording = False` first to keep the records as they are).
    Otherwise the recomputation differs from the first pass and torch raises a CheckpointError.

    A store with `regions` (set before this call) also gets a UNet forward pre-hook that reads each call's
    latent size, from which the masks know every layer's grid.
    """
    previous = unet.attn_processors
    names = [name for name, _ in cross_attention_modules(unet)]
    processors = dict(previous)
    for name in names:
        processors[f"{name}.processor"] = CrossAttentionProcessor(store, name)
    unet.set_attn_processor(processors)
    hooks = [store.regions.attach(unet)] if store.regions is not None else []
    return InstalledProcessors(unet, previous, names, store, hooks)
