"""Export an identity as a textual-inversion file another tool loads: one writer per file structure, chosen
by the format table in `formats.py` (which says which tools read each one)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch

from anybody.errors import IdentityError, UsageError
from anybody.identity.families import family_of
from anybody.identity.file import Identity
from anybody.identity.formats import DIFFUSERS_FILE, SDXL_KEYS, SINGLE_KEY, check_export, get_format, is_sdxl
from anybody.identity.names import ENCODERS
from anybody.storage import write_safetensors, write_with

# A1111's placeholder: the CLIP token id of "*</w>", the same in the SD 1.x and 2.x vocabularies.
A1111_PLACEHOLDER_ID = 265


def export_identity(identity: Identity, format: str, out_path: str | os.PathLike[str], token: str | None = None,
                    *, replace: bool = False) -> Path:
    """Write the identity's token embeddings as a textual-inversion file another tool loads; the path.

    Formats: `formats.FORMATS` ("a1111" `.pt`, "a1111-safetensors", "comfyui", "invokeai", "kohya",
    "diffusers"). Every tensor is float32, contiguous and on the CPU, and written atomically. An existing
    file is never replaced unless `replace` is true.

    In A1111, ComfyUI, InvokeAI and kohya the prompt word is the file name (`alice.pt` -> "alice"), so name
    the file after the word you want to type; `formats.prompt_hint` says it for the file written. kohya
    refuses a file name that is already a CLIP word (see `check_kohya_stem`), so such a name is a
    UsageError. Only diffusers reads the token from the file: `token` (default "<name>") is the diffusers
    key, or the A1111 "name" field, which A1111 ignores but diffusers registers when it loads the `.pt`
    without `token=` (the bare name would often be refused there, being a CLIP word). Other formats have no
    token, and passing one is a UsageError rather than silently ignored.

    SDXL identities (two text encoders): every format but diffusers writes one safetensors {"clip_l":
    (n, 768), "clip_g": (n, 1280)}, the form all of those tools read (so "a1111" needs a `.safetensors`
    path there); "diffusers" writes a folder with `text_encoder/learned_embeds.safetensors` and
    `text_encoder_2/learned_embeds.safetensors`, each {token: (n, width)}, because diffusers loads SDXL
    embeddings once per encoder: `pipe.load_textual_inversion(folder, subfolder="text_encoder_2", token=...,
    text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)` and the same with "text_encoder".
    """
    spec = get_format(format)
    target = Path(out_path).expanduser()
    checked_token, _ = check_export(identity.name, format, target, sdxl=is_sdxl(identity), stages=identity.stages,
                                    token=token, replace=replace)
    tensors = _export_tensors(identity)
    if spec.stem_is_new_token:
        check_kohya_stem(target, tensors["text_encoder"].shape[0])
    WRITERS[spec.writer](target, tensors, checked_token, identity)
    return target


def check_kohya_stem(path: Path, vectors: int) -> None:
    """Refuse a file name kohya-ss sd-scripts would refuse as a new token, with the reason and a name it takes.

    Its generation scripts (gen_img.py, gen_img_diffusers.py, sdxl_gen_img.py) and its textual-inversion
    training take the embedding file's name without suffix as `token_string`, call
    `tokenizer.add_tokens([token_string, token_string + "1", ...])` with one string per vector, and assert
    that the count added equals the vector count. With the CLIPTokenizer of the transformers it pins
    (4.44), `add_tokens` counts a string only if it is not already in `tokenizer.get_vocab()` (compared as
    is, the whole string) nor among the strings added before it; this is that rule, applied to CLIP's real
    vocabulary (the same for SDXL's second tokenizer). Newer transformers count differently, which is why
    the rule is mirrored rather than delegated to the installed tokenizer.
    """
    stem = path.stem
    if _kohya_adds_all(stem, vectors):
        return
    suggestion = next(name for name in (f"{stem}-anybody", *(f"{stem}-anybody{i}" for i in range(2, 100)))
                      if _kohya_adds_all(name, vectors))
    raise UsageError(
        f"kohya's scripts take the file name {stem!r} as a new prompt word and refuse it: CLIP's vocabulary "
        "already has it", f"Name the file {suggestion}{path.suffix} (--out {path.with_stem(suggestion)})")


@lru_cache(maxsize=1)
def _clip_vocabulary() -> frozenset[str]:
    from anybody.models.tokenizer import clip_tokenizer  # transformers: only for kohya exports

    return frozenset(clip_tokenizer().get_vocab())


def _kohya_adds_all(stem: str, vectors: int) -> bool:
    known = set(_clip_vocabulary())
    added = 0
    for string in [stem] + [f"{stem}{index}" for index in range(1, vectors)]:
        if string and string not in known:
            known.add(string)
            added += 1
    return added == vectors


def _write_diffusers(target: Path, tensors: dict[str, torch.Tensor], token: str, identity: Identity) -> None:
    """{token: (n, width)}; SDXL: the same in `text_encoder/` and `text_encoder_2/` of a folder."""
    metadata = _export_metadata(identity)
    if "text_encoder_2" not in tensors:
        write_safetensors(target, {token: tensors["text_encoder"]}, metadata)
        return
    for encoder, value in tensors.items():
        write_safetensors(target / encoder / DIFFUSERS_FILE, {token: value}, metadata)


def _write_a1111(target: Path, tensors: dict[str, torch.Tensor], token: str, identity: Identity) -> None:
    """A1111's own `.pt` structure; SDXL has no `.pt` form there, so it is the {clip_l, clip_g} file."""
    if "text_encoder_2" in tensors:
        _write_single_tensor(target, tensors, token, identity)
        return
    data = {
        "string_to_token": {"*": A1111_PLACEHOLDER_ID},
        "string_to_param": {"*": tensors["text_encoder"]},
        "name": token,
        "step": _training_steps(identity),
        "sd_checkpoint": None,
        "sd_checkpoint_name": identity.base_model,
    }
    write_with(target, lambda stream: torch.save(data, stream))


def _write_single_tensor(target: Path, tensors: dict[str, torch.Tensor], token: str, identity: Identity) -> None:
    """{"emb_params": (n, width)}, or SDXL's {"clip_l", "clip_g"}: what A1111, ComfyUI, InvokeAI, kohya read."""
    if "text_encoder_2" in tensors:
        data = {SDXL_KEYS[encoder]: value for encoder, value in tensors.items()}
    else:
        data = {SINGLE_KEY: tensors["text_encoder"]}
    write_safetensors(target, data, _export_metadata(identity))


Writer = Callable[[Path, dict[str, torch.Tensor], str, Identity], None]
WRITERS: dict[str, Writer] = {"diffusers": _write_diffusers, "a1111": _write_a1111,
                              "single-tensor": _write_single_tensor}


def _export_tensors(identity: Identity) -> dict[str, torch.Tensor]:
    """Fresh float32 CPU copies: a view would make torch.save write its whole storage (a table, say)."""
    tensors: dict[str, torch.Tensor] = {}
    for encoder in ENCODERS:
        value = identity.encoder_embeddings.get(encoder)
        if value is None:
            continue
        if value.dim() != 2 or value.shape[0] == 0 or value.shape[1] == 0 or not value.is_floating_point():
            raise IdentityError(f"The identity {identity.name!r} has {encoder} embeddings of shape "
                                f"{tuple(value.shape)} and type {value.dtype}", "Learn the identity again")
        copy = value.detach().to("cpu", torch.float32).contiguous().clone()
        if not torch.isfinite(copy).all():
            raise IdentityError(f"The identity {identity.name!r} holds non-finite values ({encoder})",
                                "Learn the identity again")
        tensors[encoder] = copy
    if "text_encoder" not in tensors:
        raise IdentityError(f"The identity {identity.name!r} has no text_encoder embeddings",
                            "Learn the identity again")
    if len({value.shape[0] for value in tensors.values()}) != 1:
        raise IdentityError(f"The identity {identity.name!r} has encoders with different token counts",
                            "Learn the identity again")
    return tensors


def _export_metadata(identity: Identity) -> dict[str, str]:
    """Provenance for people who open the file; no tool reads it, and it is never "anybody-identity"."""
    metadata = {"format": "pt", "name": identity.name, "exported_by": "anybody", "method": identity.method}
    facts = {"base_model": identity.base_model, "family": family_of(identity.metadata, identity.widths)}
    metadata.update({key: value for key, value in facts.items() if value is not None})  # only what is known
    return metadata


def _training_steps(identity: Identity) -> int | None:
    training = identity.metadata.get("training")
    steps = training.get("steps") if isinstance(training, dict) else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None
