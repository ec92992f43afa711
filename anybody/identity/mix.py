"""New people mixed from learned ones: `anybody.mix({"alice": 0.7, "bob": 0.3}, "alibob")`.

A Celeb Basis identity is a point in its model's celeb basis: per text encoder and token, coefficients c
(k,) and the token embedding mean + c·B. Identities learned in the same basis (same model, same basis hash
per encoder) mix there. With the weights w normalised to sum 1, the mix's coefficients are the weighted
mean c̄ = Σ w_i c_i, rescaled per token (s = Σ w_i |c_i| / |c̄|) to the weighted mean of the parents' norms.
That is learning's normalisation: the MLP makes each view's row unit-norm, and an identity's row is the
mean over its views (norm just under 1); a plain mean of two different people is shorter, i.e. pulled
toward the celebrities' average face, blander than either. Its tokens follow from the embedding being
affine in c: E = Σ w_i E_i + (s - 1)·c̄·B, from the parents' stored embeddings and the basis's components,
so weights 1, 0 give the first parent back bit for bit (s = 1).

The basis is read from the basis cache (no model is loaded) when a cached basis reproduces the parents'
stored embeddings from their coefficients, else built from the model they were learned on (or `model`).

Identities without coefficients (imported embeddings, SeFi-IDE, Textual Inversion), or of different
methods, are mixed as the weighted mean of their token rows (SeFi: of each stage's keys and values, where
an identity without stages counts with its tokens at every stage), with a warning: nothing makes the
straight line between two points of the token table a person. What is refused, naming why, is only what
cannot be mixed: identities made for different families, tokens of other numbers or widths, different
stage counts, and, in the basis, coefficients of different bases. All of it is read from the files'
headers, before torch is imported. The mixed identity keeps what its parents agree on (method, base model,
family: an imported parent that names none agrees with any), records its parents and weights
(`mixed_from`), and exports like any identity.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from anybody.basis import BasisOptions
from anybody.errors import IdentityError, UsageError, require_finite
from anybody.identity.contents import IdentityContents, read_contents
from anybody.identity.families import FAMILY_NAMES, drawing_model, family_of, known
from anybody.identity.library import resolve_identity
from anybody.identity.names import check_distinct, require_free, validate_name
from anybody.version import __version__

if TYPE_CHECKING:
    import torch

    from anybody.basis import CelebBasis
    from anybody.identity.file import Identity

log = logging.getLogger("anybody")
METHOD_FACTS = ("method", "base_model", "family", "width", "tokens", "stages")
"""Metadata a mixed identity takes from its parents where those that record it agree (and every `basis.*`
field, for a mix in the basis)."""
REPRODUCED = 1e-2
"""How closely (relative) a basis must rebuild the parents' stored embeddings from their coefficients to be
theirs: a basis of another token table misses by about 1, one of the same table in another dtype by 1e-3."""


def mix(weights: Mapping[str, float], name: str, *, library: str | os.PathLike[str] | None = None,
        model: object = None, replace: bool = False) -> Identity:
    """Mix library identities (names or identity files) into a new one called `name`, saved to the library.

    `weights` {identity: weight}: finite, 0 or more, not all 0, normalised to sum 1. `model` (a name, a
    path or a loaded pipeline) builds the celeb basis when the cache does not have it (default: the model
    the identities were learned on). An identity of that name is kept unless `replace`.
    """
    name = validate_name(name)
    normalised = check_weights(weights)
    if not replace:
        require_free([name], library, learning=False)
    headers = [read_contents(resolve_identity(parent, library)) for parent in normalised]
    check_distinct([header.name for header in headers])
    in_basis = all(header.shapes("coefficients").keys() == header.shapes("embeddings").keys() for header in headers)
    _check_compatible(headers, in_basis)
    from anybody.identity.file import read_identity  # torch, only once the arguments are known to be good

    parents = [read_identity(header.path) for header in headers]
    shares = list(normalised.values())
    mixed = _mix_coefficients(parents, shares, model) if in_basis else _mix_rows(parents, shares)
    mixed.name = name
    mixed.metadata.update(_agreed(parents))
    if in_basis:
        mixed.metadata.update({key: value for key, value in parents[0].metadata.items() if key.startswith("basis")})
    options = next((options for options in map(_basis_options, parents) if options is not None), None)
    if mixed.encoder_coefficients and options is not None:
        mixed.metadata["basis_options"] = asdict(options)  # what a later mix of this one builds its basis with
    mixed.metadata["mixed_from"] = {parent.name: share for parent, share in zip(parents, shares)}
    mixed.metadata["anybody_version"] = __version__
    mixed.save(library=library)
    return mixed


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The weights normalised to sum 1; negative, non-finite or all-zero weights are refused."""
    if len(weights) < 2:
        raise UsageError(f"Mixing needs at least two identities (got {len(weights)})",
                         "Name two or more, e.g. anybody mix alice bob --weights 0.7,0.3")
    for parent, weight in weights.items():
        require_finite(float(weight), f"weight of {parent}", "--weights", "0.7,0.3")
    total = math.fsum(float(weight) for weight in weights.values())
    if total <= 0:
        raise UsageError("The weights are all 0", "Give at least one identity a positive weight, e.g. "
                         "--weights 0.7,0.3")
    return {parent: float(weight) / total for parent, weight in weights.items()}


def _check_compatible(parents: list[IdentityContents], in_basis: bool) -> None:
    """The parents' tokens live in one space: no two known families that differ, the same token shapes per
    encoder (numbers and widths), the same stage count where both have stages, and, mixed in the basis,
    the same basis per encoder. Read from the files' headers."""
    first = parents[0]
    for other in parents[1:]:
        pair = f"{first.name} and {other.name} cannot be mixed"
        shapes = [parent.shapes("embeddings") for parent in (first, other)]
        families = [family_of(parent.metadata, _widths(parent)) for parent in (first, other)]
        if None not in families and families[0] != families[1]:
            made_for = [FAMILY_NAMES.get(str(family), str(family)) for family in families]
            raise IdentityError(f"{pair}: {first.name} was made for {made_for[0]} (tokens {_shapes(shapes[0])}) and "
                                f"{other.name} for {made_for[1]} (tokens {_shapes(shapes[1])})",
                                "Mix identities made for the same model family")
        if shapes[0] != shapes[1]:
            raise IdentityError(f"{pair}: their tokens differ ({first.name}: {_shapes(shapes[0])}; {other.name}: "
                                f"{_shapes(shapes[1])})", "Mix identities with as many tokens of the same widths")
        stages = [_stages(parent) for parent in (first, other)]
        if all(stages) and stages[0] != stages[1]:
            raise IdentityError(f"{pair}: they have {stages[0]} and {stages[1]} denoising stages",
                                "Mix identities learned with the same --stages")
        for encoder in first.shapes("coefficients") if in_basis else ():
            keys = [parent.metadata.get(f"basis.{encoder}") for parent in (first, other)]
            if keys[0] != keys[1]:
                raise IdentityError(f"{pair}: they were learned in different celeb bases ({str(keys[0])[:16]} and "
                                    f"{str(keys[1])[:16]}: another model, names list or basis options)",
                                    "Mix identities learned with the same model and basis options")


def _widths(identity: IdentityContents) -> list[int]:
    return [shape[1] for shape in identity.shapes("embeddings").values()]


def _stages(identity: IdentityContents) -> int:
    return identity.shapes("stage_values").get("text_encoder", (0,))[0]


def _agreed(parents: list[Identity]) -> dict[str, object]:
    """The METHOD_FACTS the parents that record one agree on (the family as their widths say it, too)."""
    facts: dict[str, object] = {}
    for key in METHOD_FACTS:
        if key == "family":
            values = {family_of(parent.metadata, parent.widths) for parent in parents} - {None}
        else:
            values = {known(parent.metadata.get(key)) for parent in parents} - {None}
        if len(values) == 1:
            facts[key] = values.pop()
    return facts


def _shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{encoder} {'x'.join(map(str, shape))}" for encoder, shape in shapes.items())


def _mix_coefficients(parents: list[Identity], shares: list[float], model: object) -> Identity:
    """The weighted mean in the celeb basis, each token rescaled to the parents' mean norm (module docstring)."""
    from anybody.identity.file import Identity

    mixed = Identity(name=parents[0].name, encoder_embeddings={})
    for encoder in parents[0].encoder_coefficients:
        basis = _basis_of(parents, encoder, model)
        coefficients = [parent.encoder_coefficients[encoder].float() for parent in parents]
        mean = _weighted(coefficients, shares)
        norms = _weighted([c.norm(dim=-1, keepdim=True) for c in coefficients], shares)
        if not bool((mean.norm(dim=-1) > 1e-6 * norms.squeeze(-1)).all()):
            names = " and ".join(parent.name for parent in parents)
            raise UsageError(f"{names} cancel out at these weights (a token's mixed coefficients are 0)",
                             "Choose other weights")
        scale = norms / mean.norm(dim=-1, keepdim=True)
        offset = ((mean * (scale - 1)).unsqueeze(-2) @ basis.components.float()).squeeze(-2)  # per token: c·B
        embeddings = _weighted([parent.encoder_embeddings[encoder].float() for parent in parents], shares) + offset
        mixed.encoder_coefficients[encoder] = mean * scale
        mixed.encoder_embeddings[encoder] = embeddings
    return mixed


def _mix_rows(parents: list[Identity], shares: list[float]) -> Identity:
    """The weighted mean of the token rows (and of each stage's keys and values), with a warning."""
    without = [parent for parent in parents if parent.encoder_coefficients.keys() != parent.encoder_embeddings.keys()]
    whose = "their" if len(without) == len(parents) else f"the {' and '.join(parent.name for parent in parents)}"
    log.warning("%s %s no basis coefficients (%s): %s token rows are averaged, which is not sure to give one "
                "consistent person in between (Celeb Basis identities of one basis mix in it)",
                " and ".join(parent.name for parent in without), "has" if len(without) == 1 else "have",
                ", ".join(sorted({parent.method for parent in without})), whose)
    from anybody.identity.file import Identity

    first = parents[0]
    mixed = Identity(name=first.name, encoder_embeddings={})
    for encoder in first.encoder_embeddings:
        mixed.encoder_embeddings[encoder] = _weighted([p.encoder_embeddings[encoder].float() for p in parents], shares)
    stages = max(parent.stages for parent in parents)
    for encoder in first.encoder_embeddings if stages else ():
        for part in ("stage_keys", "stage_values"):
            rows = [getattr(p, part).get(encoder, p.encoder_embeddings[encoder].expand(stages, -1, -1)).float()
                    for p in parents]  # an identity without stages has the same tokens at every stage
            getattr(mixed, part)[encoder] = _weighted(rows, shares)
    return mixed


def _weighted(tensors: list[torch.Tensor], shares: list[float]) -> torch.Tensor:
    """Σ w_i t_i, adding in order: with weights 1, 0, ... the first tensor comes back exactly."""
    total = tensors[0] * shares[0]
    for tensor, share in zip(tensors[1:], shares[1:]):
        total = total + tensor * share
    return total


def _basis_of(parents: list[Identity], encoder: str, model: object) -> CelebBasis:
    """The celeb basis the parents' `encoder` coefficients live in: from the cache, else from the model."""
    from anybody.basis import build_basis, cached_bases

    key = str(parents[0].metadata.get(f"basis.{encoder}", ""))
    for basis in cached_bases(key) if key else []:
        if _reproduces(basis, parents, encoder):
            return basis
    from diffusers import DiffusionPipeline

    from anybody.models import load_pipeline, text_encoders

    source = drawing_model([(p.name, p.metadata, p.widths) for p in parents]) if model is None else model
    pipe = source if isinstance(source, DiffusionPipeline) else load_pipeline(str(source))
    tokenizer, table = next((tokenizer, text.get_input_embeddings().weight)
                            for name, tokenizer, text in text_encoders(pipe) if name == encoder)
    basis = build_basis(tokenizer, table, options=_basis_options(parents[0]))
    if basis.key != key or not _reproduces(basis, parents, encoder):
        raise IdentityError(f"The model {source} does not give the celeb basis {parents[0].name} was learned in",
                            "Pass the model it was learned on with --model"
                            + (f" ({parents[0].base_model})" if parents[0].base_model else ""))
    return basis


def _basis_options(identity: Identity) -> BasisOptions | None:
    """The basis options an identity's coefficients were made with (its training settings', or a mix's);
    None when it does not say. Options this anybody does not know are refused (the file is not trusted)."""
    training = identity.metadata.get("training")
    options = training.get("basis") if isinstance(training, dict) else identity.metadata.get("basis_options")
    if not isinstance(options, dict):
        return None
    try:
        return BasisOptions(**options)
    except TypeError as error:
        raise IdentityError(f"The basis options of {identity.name!r} are not ones this anybody knows ({error})",
                            "Upgrade anybody, or learn the identity again") from error


def _reproduces(basis: CelebBasis, parents: list[Identity], encoder: str) -> bool:
    """Whether `basis` rebuilds every parent's stored embeddings from its coefficients."""
    for parent in parents:
        coefficients = parent.encoder_coefficients[encoder].float()
        if coefficients.shape[-1] != basis.rank or coefficients.shape[0] != basis.positions:
            return False
        stored = parent.encoder_embeddings[encoder].float()
        if (basis.embeddings(coefficients) - stored).norm() > REPRODUCED * stored.norm():
            return False
    return True
