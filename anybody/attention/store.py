"""The object shared by all installed cross-attention processors: what they should do, what they saw.

Diffusers calls each processor with only the layer's own inputs, so anything that must reach all of them
at once (record the maps at this resolution, take the values from that encoding, also score the
reference prompt's keys against the same queries) lives here, and the caller changes it between UNet
calls instead of re-installing processors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch.utils.hooks import RemovableHandle

from anybody.attention.layers import Resolution, as_resolution
from anybody.errors import misuse


class LogitBias(Protocol):
    """What the processors add to the attention logits of every layer (`RegionMasks`, per-person regions)."""

    def bias(self, pixels: int, batch: int, tokens: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """(batch, 1 or heads, pixels, tokens) for a layer with this many query pixels."""
        ...

    def attach(self, unet: torch.nn.Module) -> RemovableHandle:
        """Whatever hook on the UNet the bias needs (`install` adds it and removes it with the processors)."""
        ...


@dataclass
class AttentionRecord:
    """The attention one layer computed in one UNet call.

    `probabilities` is (batch * heads, query pixels, tokens), head-major within each sample as diffusers
    lays it out (`head_to_batch_dim`); `reference` is the same shape for the reference keys, or None.
    """

    layer: str
    heads: int
    resolution: Resolution
    probabilities: torch.Tensor
    reference: torch.Tensor | None = None

    def per_head(self, which: str = "target") -> torch.Tensor:
        """(batch, heads, height, width, tokens): the maps laid out on the query grid."""
        maps = self.probabilities if which == "target" else self.reference
        if maps is None:
            raise misuse(f"No reference maps were recorded for {self.layer}",
                         "Set store.reference_states before the UNet call", RuntimeError)
        height, width = self.resolution
        return maps.reshape(-1, self.heads, height, width, maps.shape[-1])


class AttentionStore:
    """Controls the installed processors and keeps what they record.

    - `resolution`: record the layers whose query grid is this (height, width) (an int for a square);
      None records nothing. Use `resolution_for(unet, latent_size, level)` rather than a literal size.
    - `keep_grad`: keep the autograd graph on the recorded target maps (a training loss needs it; a
      visualisation does not, and keeping it would hold every step's graph in memory).
    - `value_states`: an encoding (batch, tokens, dim) whose projections become the values of every
      cross-attention layer, while the `encoder_hidden_states` given to the UNet still make the keys
      (SeFi-IDE's per-stage P^K / P^V tokens). None: values from the same encoding as the keys.
    - `key_states`: the same for the keys, overriding `encoder_hidden_states`; it lets a step callback
      of an ordinary `pipe(...)` call switch both per denoising stage. None: the UNet's argument.
    - `reference_states`: a second encoding (the reference prompt, "... person") whose keys are scored
      against the SAME queries at the recorded layers; its maps are recorded as constants (no gradient)
      and do not change the UNet's output. This is SeFi-IDE's A_r = softmax(Q K_r^T / sqrt(d)).
    - `regions`: a `LogitBias` (a `RegionMasks`) that keeps each identity's tokens inside its region at
      every layer (a bias on the attention logits of those tokens' columns); None leaves every token free.
      Set it before `install`, which adds the hook it needs.
    - `recording`: set False to pause recording without changing what the processors compute (for
      example while gradient checkpointing recomputes the forward pass during `backward()`).

    Which computation path a processor takes depends only on `resolution` and `reference_states`, never
    on `recording`, so a checkpointed recomputation sees the same operations as the first pass.
    """

    def __init__(
        self,
        resolution: int | Resolution | None = None,
        *,
        keep_grad: bool = False,
        value_states: torch.Tensor | None = None,
        key_states: torch.Tensor | None = None,
        reference_states: torch.Tensor | None = None,
        regions: LogitBias | None = None,
    ) -> None:
        self.resolution: Resolution | None = None if resolution is None else as_resolution(resolution)
        self.keep_grad = keep_grad
        self.value_states = value_states
        self.key_states = key_states
        self.reference_states = reference_states
        self.regions = regions
        self.recording = True
        self.records: list[AttentionRecord] = []

    def wants(self, query_pixels: int) -> bool:
        """Whether a layer with this many query pixels is at the chosen resolution."""
        return self.resolution is not None and query_pixels == self.resolution[0] * self.resolution[1]

    def record(self, layer: str, heads: int, probabilities: torch.Tensor,
               reference: torch.Tensor | None = None) -> None:
        """Called by the processors of the chosen resolution; subclasses may reduce instead of keeping."""
        if not self.recording or self.resolution is None:
            return
        kept = probabilities if self.keep_grad else probabilities.detach()
        self.records.append(AttentionRecord(layer, heads, self.resolution, kept,
                                            None if reference is None else reference.detach()))

    def clear(self) -> None:
        """Forget what was recorded (call before each UNet forward of a training step)."""
        self.records.clear()

    def target_maps(self) -> list[torch.Tensor]:
        """The recorded maps of the keys the UNet used, one (batch * heads, pixels, tokens) per layer."""
        return [record.probabilities for record in self.records]

    def reference_maps(self) -> list[torch.Tensor]:
        """The recorded maps of the reference keys against the same queries, one per layer."""
        missing = [record.layer for record in self.records if record.reference is None]
        if missing:
            raise misuse(f"No reference maps were recorded for {missing[0]}",
                     "Set store.reference_states (the reference prompt's encoding) before the UNet call",
                     RuntimeError)
        return [record.reference for record in self.records]  # type: ignore[misc]
