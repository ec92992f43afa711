"""Build the celeb basis of a text encoder: where a new identity's token embeddings are allowed to live.

For each of the two name positions (first name, surname) the builder gathers the token-table embedding
(before position embeddings and the transformer) of every usable celebrity name, subtracts the mean and
keeps the first k right singular vectors. A new identity's token p is then `mean_p + sum_i c_pi B_pi`.

Three things differ from the reference code, on purpose (docs/method.md §1):
- Positions are aligned to words: the first name's token and the surname's token, used only where that
  word is a single token; the reference's "first two token positions" is `alignment="positions"`.
- Repeated tokens (every "john") are counted once, so the PCA is not weighted by name frequency; the
  reference meant to do this but its check never fired (`dedupe=False` reproduces that).
- Each component's sign is fixed (its largest-magnitude entry positive), k is clamped to the rank, and
  the result is cached on disk, keyed by a hash of the table, the names and the options, so saved
  coefficients always point the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from transformers import PreTrainedTokenizerBase

from anybody import settings
from anybody.basis.options import BasisOptions
from anybody.errors import ModelError
from anybody.storage import write_safetensors

log = logging.getLogger("anybody")

BUILD_VERSION = 2  # bump when the recipe changes: it is part of every basis hash (2: the rows used, not the table)
POSITIONS = ("first name", "surname")
MIN_NAMES = 2  # per position: fewer leave no direction for the basis to span


@dataclass
class CelebBasis:
    """Per position p: `mean[p]` (dim,) and `components[p]` (k, dim), orthonormal rows.

    `key` is the hash of the recipe (build version, options, names, chosen tokens, width): it is what
    identity files record, and it does not depend on the dtype the model was loaded in.
    """

    mean: torch.Tensor
    components: torch.Tensor
    key: str
    statistics: dict = field(default_factory=dict)
    cache_path: Path | None = None

    @property
    def rank(self) -> int:
        return int(self.components.shape[1])

    @property
    def width(self) -> int:
        return int(self.components.shape[2])

    @property
    def positions(self) -> int:
        return int(self.components.shape[0])

    def embeddings(self, coefficients: torch.Tensor) -> torch.Tensor:
        """(..., positions, k) coefficients → (..., positions, dim) token embeddings: mean + c·B."""
        mean = self.mean.to(coefficients)
        components = self.components.to(coefficients)
        return mean + torch.einsum("...pk,pkd->...pd", coefficients, components)

    def coefficients(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The projection of (..., positions, dim) embeddings onto the basis (its least-squares inverse)."""
        centred = embeddings - self.mean.to(embeddings)
        return torch.einsum("...pd,pkd->...pk", centred, self.components.to(embeddings))


def load_names(path: str | Path | None = None) -> list[str]:
    """The celebrity names (package data by default): one per line, `#` comments and blanks skipped."""
    if path is None:
        text = resources.files("anybody.basis").joinpath("celebrities.txt").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    names = [line.strip() for line in text.splitlines()]
    return [name for name in names if name and not name.startswith("#")]


def build_basis(
    tokenizer: PreTrainedTokenizerBase,
    token_table: torch.Tensor,
    names: list[str] | None = None,
    options: BasisOptions | None = None,
    cache_folder: Path | None = None,
) -> CelebBasis:
    """The basis of one text encoder, from its tokenizer and token-embedding table (cached on disk)."""
    options = options or BasisOptions()
    names = names if names is not None else load_names(options.names_file)
    table = token_table.detach().to("cpu", torch.float32)
    token_ids, statistics = _choose_tokens(tokenizer, names, options)
    # Only the chosen rows count: tokens added to the table later (an identity's own) change neither the
    # key nor the cache entry, so a pipeline that has learned someone builds the same basis again.
    key = _recipe_hash(names, options, token_ids, table.shape[1])
    used = sorted({token for ids in token_ids for token in ids})
    cache_folder = cache_folder or settings.bases_folder()
    cache_path = cache_folder / f"{key[:16]}-{_table_hash(table[used])[:16]}.safetensors"
    if cache_path.is_file():
        cached = _read_cache(cache_path, key)
        if cached is not None:
            return cached
    means, components = [], []
    for position, ids in enumerate(token_ids):
        mean, basis, position_statistics = _principal_components(table[ids], options.max_components)
        means.append(mean)
        components.append(basis)
        statistics["positions"][position].update(position_statistics)
    rank = min(basis.shape[0] for basis in components)
    if rank < options.max_components:
        log.info("The basis keeps k = %d components (asked for %d): the usable names and the embedding width "
                 "span no more.",
                 rank, options.max_components)
    statistics["components"] = rank
    statistics["options"] = asdict(options)
    result = CelebBasis(
        mean=torch.stack(means),
        components=torch.stack([basis[:rank] for basis in components]),
        key=key,
        statistics=statistics,
        cache_path=cache_path,
    )
    write_safetensors(
        cache_path,
        {"mean": result.mean, "components": result.components},
        {"key": key, "statistics": json.dumps(statistics), "build_version": str(BUILD_VERSION)},
    )
    return result


def cached_bases(key: str, cache_folder: Path | None = None) -> list[CelebBasis]:
    """Every cached basis of the recipe `key` (one per token table it was built from: a model whose text
    encoder was fine-tuned has the same recipe but another table), found without loading any model."""
    folder = cache_folder or settings.bases_folder()
    found = (_read_cache(path, key) for path in sorted(folder.glob(f"{key[:16]}-*.safetensors")))
    return [basis for basis in found if basis is not None]


def _choose_tokens(
    tokenizer: PreTrainedTokenizerBase, names: list[str], options: BasisOptions
) -> tuple[list[list[int]], dict]:
    """The token id each usable name gives at each position, with the reasons others were dropped."""
    unique_names = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    chosen: list[list[int]] = [[], []]
    dropped: list[Counter[str]] = [Counter(), Counter()]
    for name in unique_names:
        for position, (token, reason) in enumerate(_name_tokens(tokenizer, name, options.alignment)):
            if token is None:
                dropped[position][reason] += 1
            elif options.dedupe and token in chosen[position]:
                dropped[position]["same token as an earlier name"] += 1
            else:
                chosen[position].append(token)
    for position, ids in enumerate(chosen):
        if len(ids) < MIN_NAMES:
            raise ModelError(
                f"Only {len(ids)} names give a usable {POSITIONS[position]} token with this tokenizer",
                "Use a longer names list (--names FILE) or --alignment positions",
            )
    statistics = {
        "names": len(unique_names),
        "alignment": options.alignment,
        "positions": [
            {"position": POSITIONS[p], "names_used": len(chosen[p]), "dropped": dict(dropped[p].most_common())}
            for p in range(2)
        ],
    }
    return chosen, statistics


def _name_tokens(
    tokenizer: PreTrainedTokenizerBase, name: str, alignment: str
) -> list[tuple[int | None, str]]:
    """[(token or None, why not)] for the two positions of one name."""
    if alignment == "positions":
        ids = tokenizer(name, add_special_tokens=False).input_ids
        if len(ids) < 2:
            return [(ids[0] if ids else None, "empty"), (None, "a single token")]
        return [(ids[0], ""), (ids[1], "")]
    words = name.split()
    first = tokenizer(words[0], add_special_tokens=False).input_ids
    first_choice = (first[0], "") if len(first) == 1 else (None, "first name is several tokens")
    if len(words) < 2:
        return [first_choice, (None, "one-word name")]
    last = tokenizer(words[-1], add_special_tokens=False).input_ids
    last_choice = (last[0], "") if len(last) == 1 else (None, "surname is several tokens")
    return [first_choice, last_choice]


def _principal_components(rows: torch.Tensor, max_components: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Mean, the first k = min(max, rank) right singular vectors with fixed signs, and statistics."""
    samples = rows.to(torch.float64)
    mean = samples.mean(dim=0)
    _, singular_values, right = torch.linalg.svd(samples - mean, full_matrices=False)
    tolerance = singular_values.max() * max(samples.shape) * torch.finfo(torch.float32).eps
    rank = int((singular_values > tolerance).sum())
    keep = min(max_components, rank)
    components = right[:keep]
    pivot = components.abs().argmax(dim=1)
    signs = torch.sign(components.gather(1, pivot[:, None]))
    components = components * signs
    variance = singular_values**2
    statistics = {
        "rank": rank,
        "components": keep,
        "explained_variance": float(variance[:keep].sum() / variance.sum()),
    }
    return mean.to(torch.float32), components.to(torch.float32), statistics


def _recipe_hash(names: list[str], options: BasisOptions, token_ids: list[list[int]], width: int) -> str:
    """The names themselves are hashed, not the file they came from (so bases made before `names_file`
    existed keep their hash, and one list gives one basis wherever its file lies)."""
    how = {key: value for key, value in asdict(options).items() if key != "names_file"}
    recipe = {"version": BUILD_VERSION, "options": how, "names": names, "tokens": token_ids, "width": width}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _table_hash(table: torch.Tensor) -> str:
    return hashlib.sha256(np.ascontiguousarray(table.numpy()).tobytes()).hexdigest()


def _read_cache(path: Path, key: str) -> CelebBasis | None:
    """A cached basis, or None when the file is unreadable or for another recipe (it is then rebuilt)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("key") != key:
                return None
            return CelebBasis(
                mean=handle.get_tensor("mean"),
                components=handle.get_tensor("components"),
                key=key,
                statistics=json.loads(metadata["statistics"]),
                cache_path=path,
            )
    except Exception:
        log.warning("The cached basis %s could not be read; rebuilding it.", path)
        return None
