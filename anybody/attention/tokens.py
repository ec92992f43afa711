"""From a prompt to the token positions its attention maps are indexed by, and back to words.

Attention maps have one column per token position of the 77-long encoding (start token at 0), but a
person reads words: CLIP's BPE splits rare words into pieces (the last piece ends in "</w>"), and an
identity may own several added tokens ("<alice>", "<alice>_1" in diffusers' multi-vector naming). These
helpers do the bookkeeping once, for the loss options and for the heatmaps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from anybody.errors import UsageError

_CONTINUATION = re.compile(r"^(?P<base>.+)_(?P<index>\d+)$")


@dataclass(frozen=True)
class PromptWord:
    """One word of a prompt and the token positions (in the padded encoding) that spell it."""

    text: str
    positions: tuple[int, ...]


def _ids(tokenizer: object, prompt: str) -> list[int]:
    """The prompt's token ids as the pipelines encode it (start and end tokens, truncated, no padding)."""
    return list(tokenizer(prompt, truncation=True, max_length=tokenizer.model_max_length).input_ids)


def pipeline_prompt(pipe: object, prompt: str) -> str:
    """The prompt as a diffusers pipeline tokenizes it: its textual-inversion loader expands a multi-vector
    token ("<alice>" to "<alice> <alice>_1"), which moves every later word's position."""
    convert = getattr(pipe, "maybe_convert_prompt", None)
    return convert(prompt, pipe.tokenizer) if convert is not None else prompt


def prompt_length(tokenizer: object, prompt: str) -> int:
    """How many positions the prompt fills, start and end tokens included (the loss's option #2)."""
    return len(_ids(tokenizer, prompt))


def token_positions(tokenizer: object, prompt: str, tokens: str | Sequence[str]) -> list[int]:
    """The positions of the given token strings (for example an identity's "<alice>", "<alice>_1")."""
    wanted = [tokens] if isinstance(tokens, str) else list(tokens)
    wanted_ids = set(tokenizer.convert_tokens_to_ids(wanted))
    positions = [index for index, token_id in enumerate(_ids(tokenizer, prompt)) if token_id in wanted_ids]
    if not positions:
        raise UsageError(f"None of the tokens {wanted} appears in the prompt {prompt!r}",
                         "Put the identity's word in the prompt, or pass the positions yourself")
    return positions


def prompt_words(tokenizer: object, prompt: str) -> list[PromptWord]:
    """The prompt's words in order, each with its token positions; special tokens are skipped.

    BPE pieces are merged up to the piece that ends a word ("</w>"); an added token is a word of its
    own, and an added "X_k" right after the word of X joins it (one identity, one word).
    """
    ids = _ids(tokenizer, prompt)
    special = set(tokenizer.all_special_ids)
    added = {token_id for token_id in tokenizer.get_added_vocab().values() if token_id not in special}
    words: list[PromptWord] = []
    pieces: list[int] = []
    piece_positions: list[int] = []

    def flush() -> None:
        if pieces:
            text = tokenizer.decode(pieces, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()
            words.append(PromptWord(text or "?", tuple(piece_positions)))
            pieces.clear()
            piece_positions.clear()

    for position, token_id in enumerate(ids):
        if token_id in special:
            flush()
            continue
        token = tokenizer.convert_ids_to_tokens(token_id)
        if token_id in added:
            flush()
            match = _CONTINUATION.match(token)
            if match and words and words[-1].text == match["base"] and words[-1].positions[-1] == position - 1:
                words[-1] = PromptWord(words[-1].text, (*words[-1].positions, position))
            else:
                words.append(PromptWord(token, (position,)))
            continue
        pieces.append(token_id)
        piece_positions.append(position)
        if token.endswith("</w>"):
            flush()
    flush()
    return words
