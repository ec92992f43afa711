"""The real CLIP tokenizer, built offline from the BPE merges file that ships inside open_clip_torch.

Stable Diffusion 1.x, 2.x and SDXL all use this byte-level BPE (49,408 tokens). No tokenizer can be
downloaded here, so the built-in tiny models build it from the file; real models bring their own.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

from anybody.errors import ModelError

MERGE_COUNT = 49152 - 256 - 2  # the vocabulary size of CLIP, less the byte symbols and the 2 special tokens
MAX_LENGTH = 77


def _bpe_file() -> Path:
    """Find open_clip's BPE file without importing open_clip (its import pulls torchvision)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The built-in tiny models need the CLIP BPE file from the open_clip_torch package, which is not "
            "installed",
            "Install it with: pip install --no-deps open_clip_torch",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def _byte_symbols() -> list[str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode symbols, in CLIP's order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


@lru_cache(maxsize=1)
def _vocabulary_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    with gzip.open(_bpe_file()) as stream:
        lines = stream.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    symbols = _byte_symbols()
    words = [*symbols, *(symbol + "</w>" for symbol in symbols), *("".join(pair) for pair in merges)]
    words += ["<|startoftext|>", "<|endoftext|>"]
    return {word: index for index, word in enumerate(words)}, merges  # type: ignore[return-value]


def clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """A fresh CLIP tokenizer (SD 1.x pads with `<|endoftext|>`, SD 2.x and SDXL's second with "!")."""
    vocabulary, merges = _vocabulary_and_merges()
    return CLIPTokenizer(vocab=dict(vocabulary), merges=list(merges), pad_token=pad_token, model_max_length=MAX_LENGTH)
