"""An identity's place in a text encoder: its name, its new tokens, and how prompts refer to them.

An identity called "alice" with n vectors owns the tokens `<alice>`, `<alice>_1`, ... `<alice>_{n-1}`:
the naming diffusers' `load_textual_inversion` uses for multi-vector embeddings, so after
`anybody.apply(pipe, identity)` a plain diffusers call with "<alice>" in the prompt draws her. anybody's
own prompts say "alice" as a whole word; `names.rewrite_prompt` turns it into "<alice>".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from anybody.errors import IdentityError


def install_tokens(tokenizer, text_encoder: torch.nn.Module, tokens: Sequence[str],
                   embeddings: torch.Tensor | None = None) -> list[int]:
    """Add the tokens (if new) to the tokenizer and the encoder's table; write their rows if given.

    A token the tokenizer lacks maps to its unknown token: asking so costs nothing, where `get_vocab()` builds
    a dict of all 49,408 CLIP words (0.1 s) each time."""
    known = tokenizer.convert_tokens_to_ids(list(tokens))
    missing = [token for token, index in zip(tokens, known) if index is None or index == tokenizer.unk_token_id]
    if missing:
        tokenizer.add_tokens(missing)
        table = text_encoder.get_input_embeddings()
        if len(tokenizer) > table.weight.shape[0]:
            text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    if embeddings is not None:
        table = text_encoder.get_input_embeddings().weight
        if embeddings.shape != (len(tokens), table.shape[1]):
            raise IdentityError(
                f"The identity's embeddings are {tuple(embeddings.shape)} but this text encoder needs "
                f"({len(tokens)}, {table.shape[1]})",
                "Use the model the identity was learned on (anybody identities shows it)",
            )
        with torch.no_grad():
            table[ids] = embeddings.to(table)
    return list(ids)


class TokenInjection:
    """Replace the token-table rows of some tokens by tensors that carry gradients (for learning).

    A forward hook on the encoder's input-embedding layer (a public PyTorch hook, no library code is
    changed): wherever a prompt holds token `ids[j]`, the looked-up row becomes `values[b, j]`. Set
    `values` ((n, dim) or (batch, n, dim)) before each encoder call; `remove()` when done.
    """

    def __init__(self, text_encoder: torch.nn.Module, ids: Sequence[int]) -> None:
        self.ids = torch.tensor(list(ids))
        self.values: torch.Tensor | None = None
        self._handle = text_encoder.get_input_embeddings().register_forward_hook(self._replace)

    def _replace(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if self.values is None:
            return output
        input_ids = inputs[0]
        ids = self.ids.to(input_ids.device)
        values = self.values.to(output.dtype)
        if values.dim() == 2:
            values = values.expand(output.shape[0], -1, -1)
        matches = input_ids[..., None] == ids  # (batch, length, n)
        replacement = torch.einsum("bln,bnd->bld", matches.to(values.dtype), values)
        return torch.where(matches.any(-1, keepdim=True), replacement, output)

    def remove(self) -> None:
        self._handle.remove()
