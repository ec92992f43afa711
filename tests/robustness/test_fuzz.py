"""Fuzzing: any name, prompt or identity file gives a result or anybody's own error, never another exception.

The photo loader and the embedding importer have their own fuzz tests (tests/face, tests/identity);
these cover the name validator, everything that parses a prompt, and the identity-file reader, on
arbitrary bytes and on valid files with mutated metadata, tensors and header.
"""

from __future__ import annotations

import json
import math
import re
import struct
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes

from anybody.errors import AnybodyError, IdentityError, UsageError
from anybody.identity import Identity, identity_path, read_identity, rewrite_prompt, token_strings, validate_name
from anybody.identity.file import content_checksum
from anybody.identity.names import NAME_PATTERN, RESERVED_WORDS
from anybody.identity.tokens import install_tokens

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that tends to break names and prompts: separators, dots, controls, look-alikes, case-folding traps.
TRICKY = ["a", "Z", "0", "_", "-", "/", "\\", "..", ".", " ", "\t", "\n", "\x00", "\x1b", "\u202e", "é", "\u212a",
          "İ", "ß", "<", ">", "<alice>", "alice", "Alice", "_1", "photo", ",", "\ud800", "😀", "\u0301"]
tricky_text = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(TRICKY), max_size=12).map("".join))
valid_names = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True).filter(lambda name: name not in RESERVED_WORDS)


# Names

@FUZZ
@given(name=st.one_of(tricky_text, st.none(), st.integers(), st.binary(max_size=10)))
def test_any_name_is_valid_and_stays_in_the_library_or_is_refused(name):
    try:
        stored = validate_name(name)
    except IdentityError:
        return
    assert NAME_PATTERN.fullmatch(stored) and stored == stored.lower() and stored.isascii()
    library = Path("/library")
    path = identity_path(name, library)
    assert path.parent == library and path.name == f"{stored}.safetensors"


# Prompts

@FUZZ
@given(prompt=tricky_text, names=st.lists(valid_names, max_size=3, unique=True), counts=st.integers(1, 4),
       expand=st.booleans())
def test_rewriting_a_prompt_never_fails_and_is_idempotent(prompt, names, counts, expand):
    expand_tokens = {name: counts for name in names} if expand else None
    once = rewrite_prompt(prompt, names, expand_tokens)
    assert isinstance(once, str)
    assert rewrite_prompt(once, names, expand_tokens) == once  # a token is never rewritten again
    for name in names:  # each name used as a word became its token(s), nothing else changed
        used = re.search(rf"(?<![\w<>-]){re.escape(name)}(?![\w>-])", prompt, re.IGNORECASE) is not None
        tokens = " ".join(token_strings(name, counts)) if expand else f"<{name}>"
        assert (tokens in once) or not used


@FUZZ
@given(prompt=st.one_of(tricky_text, st.none(), st.integers()), count=st.integers(-3, 10**12),
       steps=st.integers(-3, 10**12), guidance=st.floats(allow_nan=True, allow_infinity=True),
       height=st.none() | st.integers(-(2**70), 2**70), width=st.none() | st.integers(-64, 4096),
       names=st.lists(valid_names, max_size=2, unique=True))
def test_generation_argument_checks_give_a_usage_error_or_pass(prompt, count, steps, guidance, height, width, names):
    from anybody.generation.checks import check_arguments, check_names_used

    try:
        check_arguments(prompt, count, steps, guidance, height, width)
    except UsageError:
        return
    assert isinstance(prompt, str) and prompt.strip() and count >= 1 and steps >= 1 and guidance >= 0
    assert all(value is None or (value >= 8 and value % 8 == 0) for value in (height, width))
    try:
        check_names_used(prompt, names)
    except UsageError as error:
        assert any(name in error.problem for name in names)


@pytest.fixture(scope="module")
def tokenizer():
    """The tiny model's CLIP tokenizer with alice's two tokens added, as `apply` adds them."""
    from anybody.models import load_pipeline

    pipe = load_pipeline("tiny", device="cpu")
    install_tokens(pipe.tokenizer, pipe.text_encoder, token_strings("alice", 2))
    return pipe.tokenizer


@FUZZ
@given(prompt=tricky_text)
def test_prompt_parsing_for_the_encoder_and_the_attention_maps(tokenizer, prompt):
    from anybody.attention import prompt_length, prompt_words, token_positions
    from anybody.generation.draw import _check_length

    assume(_is_text(prompt))  # lone surrogates: refused before parsing (the test below)
    alice = Identity("alice", {"text_encoder": torch.zeros(2, 32)})
    model_prompt = rewrite_prompt(prompt, ["alice"])
    _check_length(SimpleNamespace(tokenizer=tokenizer), prompt, [alice])  # at most a warning
    length = prompt_length(tokenizer, model_prompt)
    assert 2 <= length <= tokenizer.model_max_length
    words = prompt_words(tokenizer, model_prompt)
    positions = [position for word in words for position in word.positions]
    assert positions == sorted(set(positions)) and all(0 < position < length - 1 for position in positions)
    try:
        found = token_positions(tokenizer, model_prompt, token_strings("alice", 2))
    except UsageError:
        assert "<alice>" not in model_prompt or length == tokenizer.model_max_length
    else:
        assert found and all(0 < position < length for position in found)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_a_prompt_that_is_not_text_is_a_usage_error_in_the_api_too():
    """Bytes that were not UTF-8 on a command line (lone surrogates) are refused before any model loads."""
    from anybody.generation.draw import attention_map, generate

    prompt = "a photo of alice \udce9t\udce9"
    with pytest.raises(UsageError, match="The prompt holds bytes that are not UTF-8"):
        generate(prompt, model="no-such-model")
    with pytest.raises(UsageError, match="The negative prompt holds bytes"):
        generate("a photo of alice", model="no-such-model", negative_prompt=prompt)
    with pytest.raises(UsageError, match="The prompt holds bytes that are not UTF-8"):
        attention_map(prompt, model="no-such-model")


# Identity files

def _read(data: bytes) -> Identity | None:
    """read_identity on these bytes: the identity, or None for an IdentityError; anything else fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.safetensors"
        path.write_bytes(data)
        try:
            identity = read_identity(path)
        except IdentityError:
            return None
    _check_usable(identity)
    return identity


def _check_usable(identity: Identity) -> None:
    """What every consumer relies on when the reader says yes."""
    assert NAME_PATTERN.fullmatch(identity.name)
    embeddings = identity.embeddings
    assert embeddings.dim() == 2 and embeddings.numel() and torch.isfinite(embeddings.float()).all()
    for values in identity.encoder_embeddings.values():
        assert values.shape[0] == identity.token_count
    if identity.stages:
        assert identity.stage_keys["text_encoder"].shape == identity.stage_values["text_encoder"].shape
    photos = identity.photos
    assert isinstance(photos, list) and all(isinstance(photo, str) for photo in photos)
    if identity.face_descriptors is not None:  # one row per listed photo, of the descriptor's width
        assert identity.face_descriptors.dim() == 2 and identity.face_descriptors.shape[0] == len(photos)
        if identity.face_descriptor is not None:
            assert identity.face_descriptors.shape[1] == identity.face_descriptor.shape[0]


def _valid_parts(tokens: int = 2, width: int = 8) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    generator = torch.Generator().manual_seed(0)
    tensors = {"text_encoder.embeddings": torch.randn(tokens, width, generator=generator),
               "text_encoder.coefficients": torch.randn(tokens, 4, generator=generator),
               "face.descriptor": torch.randn(16, generator=generator),
               "face.descriptors.0": torch.randn(16, generator=generator),
               "face.descriptors.1": torch.randn(16, generator=generator)}
    metadata = {"format": "anybody-identity", "format_version": "2", "name": "alice", "method": "celeb-basis",
                "base_model": "tiny", "family": "sd1", "training": json.dumps({"steps": 800}),
                "photo": "me1.jpg", "photos": json.dumps(["me1.jpg", "me2.jpg"])}
    return tensors, {**metadata, "sha256": content_checksum(tensors, metadata)}


VALID = safetensors_bytes(*_valid_parts())


def test_the_unmutated_file_reads():
    identity = _read(VALID)
    assert identity.name == "alice" and identity.photos == ["me1.jpg", "me2.jpg"]
    assert identity.face_descriptors.shape == (2, 16)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    _read(data)


@FUZZ
@given(cut=st.integers(0, len(VALID)), flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)),
                                                      max_size=6))
def test_truncated_and_damaged_valid_files(cut, flips):
    data = bytearray(VALID)
    for index, value in flips:
        data[index] = value
    _read(bytes(data[:cut] if cut < len(VALID) else data))


DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8, torch.uint8, torch.bool,
          torch.float8_e4m3fn, torch.float8_e5m2]
KEYS = ["text_encoder.embeddings", "text_encoder.coefficients", "text_encoder.stage_keys", "text_encoder.stage_values",
        "text_encoder_2.embeddings", "text_encoder_2.coefficients", "face.descriptor", "module.layer.weight",
        "face.descriptors.0", "face.descriptors.1", "face.descriptors.2", "face.descriptors.01", "face.descriptors.",
        "text_encoder", "unet.weight", ""]
METADATA_KEYS = ["format", "format_version", "name", "method", "base_model", "family", "training", "created",
                 "basis.text_encoder", "stages", "photos", "photo", "mixed_from"]
metadata_values = st.one_of(st.text(max_size=30), st.sampled_from(["1", "0", "2", "99", "²", "١", "-1", " 1", "{", "[",
                                                                    "[" * 5000, "{}", "null", "anybody-identity",
                                                                    "alice", "../evil", "x" * 300, '["a.jpg"]',
                                                                    '["a.jpg", "b.jpg", "c.jpg"]', "[1, 2]",
                                                                    '["' + "x" * 300 + '"]', '{"alice": 1.0}']))


@st.composite
def tensors(draw) -> torch.Tensor:
    shape = draw(st.lists(st.integers(0, 5), max_size=4))
    dtype = draw(st.sampled_from(DTYPES))
    values = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 9))))
    special = draw(st.sampled_from([None, math.nan, math.inf, -math.inf, 1e30]))
    if special is not None and values.numel():
        values.view(-1)[draw(st.integers(0, values.numel() - 1))] = special
    return values.to(dtype)


@FUZZ
@example(changed={}, removed=[], metadata={"format_version": "²"}, dropped=[], resealed=False)  # int("²") raised
@example(changed={}, removed=[], metadata={"training": "[" * 5000}, dropped=[], resealed=True)  # RecursionError
@example(changed={"text_encoder.embeddings": torch.zeros(2, 8).to(torch.float8_e4m3fn)}, removed=[], metadata={},
         dropped=[], resealed=False)  # found: torch.isfinite raised NotImplementedError
@given(changed=st.dictionaries(st.sampled_from(KEYS), tensors(), max_size=4),
       removed=st.lists(st.sampled_from(KEYS), max_size=2),
       metadata=st.dictionaries(st.sampled_from(METADATA_KEYS) | st.text(max_size=8), metadata_values, max_size=4),
       dropped=st.lists(st.sampled_from(METADATA_KEYS), max_size=2), resealed=st.booleans())
def test_valid_files_with_mutated_tensors_and_metadata(changed, removed, metadata, dropped, resealed):
    """Mutations with the old checksum (damage), or a new one matching them (a crafted file)."""
    parts, base = _valid_parts()
    parts.update(changed)
    for key in removed:
        parts.pop(key, None)
    base.update(metadata)
    for key in dropped:
        base.pop(key, None)
    if resealed:
        base["sha256"] = content_checksum(parts, base)
    try:
        data = safetensors_bytes({key: value.contiguous() for key, value in parts.items()}, metadata=base)
    except Exception:  # safetensors itself refuses to write it: nothing to read
        assume(False)
    _read(data)


def _header(data: bytes) -> dict:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def _with_header(header: dict, body: bytes, claimed_length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded) if claimed_length is None else claimed_length) + encoded + body


@FUZZ
@given(key=st.sampled_from(["text_encoder.embeddings", "text_encoder.coefficients", "face.descriptor",
                            "face.descriptors.1"]),
       dtype=st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "C64",
                              "F4", "X", ""]),
       shape=st.lists(st.integers(-2, 2**40), max_size=4) | st.just(None),
       offsets=st.tuples(st.integers(-1, 2**40), st.integers(-1, 2**40)) | st.just(None),
       claimed_length=st.none() | st.sampled_from([0, 1, 7, 2**31, 2**63, 2**64 - 1]),
       metadata=st.none() | st.sampled_from([[], "x", 3, {"format": 1}, {"format": None}]))
def test_valid_files_with_a_mutated_header(key, dtype, shape, offsets, claimed_length, metadata):
    header = _header(VALID)
    body = VALID[8 + struct.unpack("<Q", VALID[:8])[0]:]
    header[key]["dtype"] = dtype
    if shape is not None:
        header[key]["shape"] = shape
    if offsets is not None:
        header[key]["data_offsets"] = list(offsets)
    if metadata is not None:
        header["__metadata__"] = metadata
    _read(_with_header(header, body, claimed_length))


def test_a_huge_header_is_refused_quickly():
    """A header that claims (and holds) many megabytes of JSON is an IdentityError, not a hang or a crash."""
    header = _header(VALID)
    header["__metadata__"]["padding"] = "x" * (120 * 2**20)  # over safetensors' 100 MB header limit
    body = VALID[8 + struct.unpack("<Q", VALID[:8])[0]:]
    assert _read(_with_header(header, body)) is None


def test_every_refusal_is_the_projects_own_error_type():
    """IdentityError and UsageError are AnybodyErrors: the CLI prints them as one line (exit 2)."""
    assert issubclass(IdentityError, AnybodyError) and issubclass(UsageError, AnybodyError)
