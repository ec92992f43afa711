"""SeFi-IDE's face-wise attention loss: keep the identity's attention where "person" would attend.

With one photo, a learned identity token tends to take over the attention of the whole image, and the
other words of a prompt ("a cup") lose their place. SeFi-IDE (arXiv 2402.00631, §3.1) scores the same
latent queries Q against the keys of a reference prompt ("a photo of the face of person") and of the
target prompt ("a photo of the face of V*"), and penalises MSE(A_r, A_t). A_r is a fixed target: the
reference prompt holds nothing trainable, and a gradient through it would pull the reference towards the
identity instead of the other way round. (The paper's Algorithm 1 prints MSE(A_t, A_t): a typo.)

Token choices (the paper's Figure 6): "all" = every one of the 77 token maps (#3, the paper's choice and
the default), "identity" = only the identity token's maps (#1), "prompt" = the first `prompt_length`
positions, start and end tokens included (#2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from anybody.errors import misuse
from anybody.methods.sefi import ATTENTION_LOSS_WEIGHT

TokenChoice = Literal["all", "identity", "prompt"]
PAPER_WEIGHT = ATTENTION_LOSS_WEIGHT  # SeFi-IDE's lambda in L = L_KV + lambda * L_att (0.01 and 0.05 underfit)


def face_attention_loss(
    reference: torch.Tensor | Sequence[torch.Tensor],
    target: torch.Tensor | Sequence[torch.Tensor],
    tokens: TokenChoice = "all",
    *,
    identity_positions: Sequence[int] | None = None,
    reference_positions: Sequence[int] | None = None,
    prompt_length: int | None = None,
) -> torch.Tensor:
    """MSE between reference and target attention maps, averaged over the recorded layers.

    `reference` and `target` are one (batch * heads, query pixels, tokens) tensor per layer, recorded
    from the same queries (`AttentionStore.reference_maps()` / `.target_maps()`). With
    tokens="identity", `identity_positions` are the target's identity token positions and
    `reference_positions` the reference word's ("person"); they default to the same positions, and a
    single reference position serves an identity of several tokens.
    """
    references = [reference] if isinstance(reference, torch.Tensor) else list(reference)
    targets = [target] if isinstance(target, torch.Tensor) else list(target)
    if not targets:
        raise misuse("No attention maps were recorded",
                     "Install the processors (install(unet, store)) and set store.resolution to a "
                     "cross-attention resolution of this UNet (resolution_for)", RuntimeError)
    if len(references) != len(targets):
        raise misuse(f"{len(references)} reference maps but {len(targets)} target maps",
                     "Record both from the same UNet call (store.reference_states)")
    target_columns, reference_columns = _columns(tokens, identity_positions, reference_positions, prompt_length,
                                                 targets[0].shape[-1])
    losses = []
    for reference_maps, target_maps in zip(references, targets, strict=True):
        if reference_maps.shape != target_maps.shape:
            raise misuse(f"Reference maps {tuple(reference_maps.shape)} and target maps "
                         f"{tuple(target_maps.shape)} differ in shape",
                         "Record both from the same queries and prompts encoded to the same length")
        fixed = reference_maps.detach().to(target_maps.dtype)
        selected_target = target_maps if target_columns is None else target_maps[..., target_columns]
        selected_reference = fixed if reference_columns is None else fixed[..., reference_columns]
        losses.append(F.mse_loss(selected_target, selected_reference.expand_as(selected_target)))
    return torch.stack(losses).mean()


def _columns(tokens: str, identity_positions: Sequence[int] | None, reference_positions: Sequence[int] | None,
             prompt_length: int | None, width: int) -> tuple[list[int] | None, list[int] | None]:
    """Which token columns the target and the reference contribute (None: all of them)."""
    if tokens == "all":
        return None, None
    if tokens == "prompt":
        if prompt_length is None or not 1 <= prompt_length <= width:
            raise misuse(f"tokens='prompt' needs prompt_length between 1 and {width}, not {prompt_length}",
                         "Pass prompt_length=anybody.attention.prompt_length(tokenizer, prompt)")
        return list(range(prompt_length)), list(range(prompt_length))
    if tokens == "identity":
        if not identity_positions:
            raise misuse("tokens='identity' needs the identity token positions",
                         "Pass identity_positions=anybody.attention.token_positions(tokenizer, prompt, tokens)")
        target_columns = [int(position) for position in identity_positions]
        reference_columns = (target_columns if reference_positions is None
                             else [int(position) for position in reference_positions])
        if len(reference_columns) not in (1, len(target_columns)):
            raise misuse(f"{len(reference_columns)} reference positions for {len(target_columns)} identity "
                         "positions", "Give one reference position, or one per identity position")
        if any(not 0 <= column < width for column in (*target_columns, *reference_columns)):
            raise misuse(f"A token position is outside the {width} recorded tokens",
                         "Use positions in the padded encoding (the start token is position 0)")
        return target_columns, reference_columns
    raise misuse(f"Unknown token choice {tokens!r}", "Use 'all', 'identity' or 'prompt'")
