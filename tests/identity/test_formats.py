"""Exports load in diffusers' own loader and draw like anybody, and follow each tool's own rules (kohya's token
rule, InvokeAI's probe); imports read every format, diffusers' SDXL training output whole; bad files are refused;
nothing is overwritten without `replace`; files get the umask's mode."""

from __future__ import annotations

import os
import pickle
import stat
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, safe_open, save_file

from anybody.errors import IdentityError, UsageError
from anybody.generation import apply
from anybody.identity import Identity, token_strings
from anybody.identity.formats import FORMATS, export_file_name, export_path, prompt_hint
from anybody.identity.readers import import_embedding
from anybody.identity.tokens import install_tokens
from anybody.identity.writers import export_identity
from anybody.models import load_pipeline
from anybody.models.tokenizer import clip_tokenizer

WIDTH = 32  # the tiny model's text-encoder width
PROMPT = "a photo of <alice>"


def _identity(width: int = WIDTH, tokens: int = 2, name: str = "alice") -> Identity:
    generator = torch.Generator().manual_seed(7)
    return Identity(
        name=name,
        encoder_embeddings={"text_encoder": torch.randn(tokens, width, generator=generator)},
        metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1", "training": {"steps": 7}},
    )


def _sdxl_identity(widths: tuple[int, int] = (768, 1280), tokens: int = 2) -> Identity:
    generator = torch.Generator().manual_seed(8)
    return Identity(
        name="alice",
        encoder_embeddings={"text_encoder": torch.randn(tokens, widths[0], generator=generator),
                            "text_encoder_2": torch.randn(tokens, widths[1], generator=generator)},
        metadata={"method": "celeb-basis", "base_model": "tiny-xl", "family": "sdxl"},
    )


def _export(identity: Identity, fmt: str, folder: Path, **options: str) -> Path:
    return export_identity(identity, fmt, folder / export_file_name(identity, fmt), **options)


def _raw(path: Path) -> dict:
    """A written file's contents as plain dicts of tensors (folders: one entry per encoder file)."""
    if path.is_dir():
        return {sub.parent.name: load_file(sub) for sub in sorted(path.glob("*/learned_embeds.safetensors"))}
    if path.suffix == ".pt":
        return torch.load(path, map_location="cpu", weights_only=True)
    return load_file(path)


def _assert_same_tensors(left: object, right: object) -> None:
    """Same keys and bit-identical tensors; other values may differ (an import keeps no A1111 step count)."""
    if isinstance(left, dict):
        assert isinstance(right, dict) and set(left) == set(right)
        for key in left:
            _assert_same_tensors(left[key], right[key])
    elif isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor) and left.dtype == right.dtype and torch.equal(left, right)


@pytest.fixture(scope="module")
def pipe():
    """This module's own tiny pipeline: each test loads its identity under its own name, so none collide."""
    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="module")
def reference_prompt(pipe) -> torch.Tensor:
    """The prompt embeddings with the identity installed by anybody, tokenized without diffusers' rewrite."""
    tokens = token_strings("alice", 2)
    ids = install_tokens(pipe.tokenizer, pipe.text_encoder, tokens, _identity().embeddings)
    tokenizer = pipe.tokenizer
    input_ids = tokenizer("a photo of <alice> <alice>_1", padding="max_length", truncation=True,
                          max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
    assert set(ids) <= set(input_ids[0].tolist())
    with torch.no_grad():
        return pipe.text_encoder(input_ids)[0]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_export_loads_in_diffusers_and_encodes_exactly_as_anybody_installs_it(
        pipe, tmp_path, fmt, reference_prompt):
    identity = _identity()
    path = _export(identity, fmt, tmp_path)
    token = f"<alice-{fmt}>"  # the same rows under another token encode the same prompt
    pipe.load_textual_inversion(str(path), token=token)
    ids = pipe.tokenizer.convert_tokens_to_ids([token, f"{token}_1"])
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight[ids], identity.embeddings)
    with torch.no_grad():
        embeds = pipe.encode_prompt(f"a photo of {token}", "cpu", 1, False)[0]
    assert embeds.dtype == torch.float32
    torch.testing.assert_close(embeds, reference_prompt, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fmt", [name for name, spec in FORMATS.items() if spec.token_in_file])
def test_diffusers_finds_the_token_in_the_file_without_being_told(pipe, tmp_path, fmt):
    # "alice" is already a CLIP word, which diffusers refuses as a new token: the files say "<name>".
    assert "alice" in pipe.tokenizer.get_vocab()
    name = f"found-{fmt}"
    pipe.load_textual_inversion(str(_export(_identity(name=name), fmt, tmp_path)))
    vocabulary = pipe.tokenizer.get_vocab()
    assert f"<{name}>" in vocabulary and f"<{name}>_1" in vocabulary


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("sdxl", [False, True], ids=["sd1", "sdxl"])
def test_export_import_export_keeps_every_tensor_bit_for_bit(tmp_path, fmt, sdxl, library):
    identity = _sdxl_identity() if sdxl else _identity()
    first = _export(identity, fmt, tmp_path / "first")
    imported = import_embedding(first, "alice")
    assert imported.name == "alice" and imported.method == "imported"
    assert imported.metadata["source_file"] == first.name
    assert imported.metadata.get("family") == ("sdxl" if sdxl else None)  # 768+1280 is SDXL; 32 no known family
    assert imported.base_model is None and "base_model" not in imported.metadata  # a file names no model
    assert set(imported.encoder_embeddings) == set(identity.encoder_embeddings)
    for encoder, value in identity.encoder_embeddings.items():
        assert torch.equal(imported.encoder_embeddings[encoder], value)
    second = _export(imported, fmt, tmp_path / "second")
    _assert_same_tensors(_raw(first), _raw(second))
    saved = Identity.load(imported.save(library=library))  # an import is a valid identity file
    assert torch.equal(saved.embeddings, identity.embeddings)


def test_a1111_pt_has_the_webui_structure(tmp_path):
    data = _raw(_export(_identity(), "a1111", tmp_path))
    assert set(data) == {"string_to_token", "string_to_param", "name", "step", "sd_checkpoint",
                         "sd_checkpoint_name"}
    assert data["string_to_token"] == {"*": 265} and list(data["string_to_param"]) == ["*"]
    embedding = data["string_to_param"]["*"]
    assert embedding.dtype == torch.float32 and embedding.is_contiguous() and embedding.device.type == "cpu"
    assert torch.equal(embedding, _identity().embeddings)
    assert (data["name"], data["step"], data["sd_checkpoint"], data["sd_checkpoint_name"]) == (
        "<alice>", 7, None, "tiny")


@pytest.mark.parametrize("fmt", [name for name, spec in FORMATS.items() if spec.writer == "single-tensor"])
def test_single_tensor_formats_hold_one_emb_params_tensor(tmp_path, fmt):
    path = _export(_identity(), fmt, tmp_path)
    data = load_file(path)
    assert list(data) == ["emb_params"] and data["emb_params"].dtype == torch.float32
    assert torch.equal(data["emb_params"], _identity().embeddings)
    with pytest.raises(IdentityError, match="not an anybody identity file"):
        Identity.load(path)


def test_diffusers_file_is_one_key_named_by_the_token(tmp_path):
    assert list(load_file(_export(_identity(), "diffusers", tmp_path))) == ["<alice>"]
    other = export_identity(_identity(), "diffusers", tmp_path / "other.safetensors", token="<al>")
    assert list(load_file(other)) == ["<al>"]


def test_exports_are_fresh_float32_copies_even_of_half_precision_views(tmp_path):
    table = torch.randn(2000, WIDTH).half()
    identity = _identity()
    identity.encoder_embeddings["text_encoder"] = table[10:12]
    embedding = _raw(_export(identity, "a1111", tmp_path))["string_to_param"]["*"]
    assert embedding.dtype == torch.float32 and embedding.is_contiguous()
    assert embedding.untyped_storage().nbytes() == 2 * WIDTH * 4  # not the whole table
    assert torch.equal(embedding, table[10:12].float())


def test_sdxl_exports_clip_l_and_clip_g_and_imports_both_encoders(tmp_path):
    identity = _sdxl_identity()
    for fmt in (name for name, spec in FORMATS.items() if spec.sdxl_suffix):
        path = _export(identity, fmt, tmp_path / fmt)
        assert path.suffix == ".safetensors"
        data = load_file(path)
        assert set(data) == {"clip_l", "clip_g"}
        assert data["clip_l"].shape == (2, 768) and data["clip_g"].shape == (2, 1280)
        imported = import_embedding(path, "alice", model_width={"text_encoder": 768, "text_encoder_2": 1280})
        assert imported.metadata["family"] == "sdxl" and imported.metadata["source_format"] == "sdxl"
        assert torch.equal(imported.encoder_embeddings["text_encoder_2"], identity.encoder_embeddings[
            "text_encoder_2"])
    with pytest.raises(UsageError, match=r"\.safetensors"):
        export_identity(identity, "a1111", tmp_path / "alice.pt")
    folder = _export(identity, "diffusers", tmp_path)
    assert folder.is_dir()
    assert list(load_file(folder / "text_encoder_2" / "learned_embeds.safetensors")) == ["<alice>"]
    assert set(import_embedding(folder, "alice").encoder_embeddings) == {"text_encoder", "text_encoder_2"}
    with pytest.raises(UsageError, match="folder"):
        export_identity(identity, "diffusers", tmp_path / "alice.safetensors")


@pytest.fixture(scope="module")
def sdxl_pipe():
    return load_pipeline("tiny-sdxl", device="cpu")


def _sdxl_widths(pipe) -> tuple[int, int]:
    return tuple(encoder.get_input_embeddings().weight.shape[1] for encoder in (pipe.text_encoder,
                                                                                 pipe.text_encoder_2))


@pytest.fixture(scope="module")
def sdxl_reference(sdxl_pipe) -> tuple:
    """The SDXL prompt encodings with the identity installed by anybody (as <alice>; the tests load theirs
    under other tokens)."""
    apply(sdxl_pipe, _sdxl_identity(widths=_sdxl_widths(sdxl_pipe)))
    with torch.no_grad():
        return sdxl_pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_sdxl_export_loads_in_diffusers_with_one_call_per_encoder(sdxl_pipe, sdxl_reference, tmp_path, fmt):
    """On a real (tiny) SDXL pipeline: the rows equal the identity's, and the prompt encodes as anybody's."""
    pipe = sdxl_pipe
    identity = _sdxl_identity(widths=_sdxl_widths(pipe))
    path = _export(identity, fmt, tmp_path)
    token = f"<alice-{fmt}>"
    pairs = {"text_encoder": (pipe.tokenizer, pipe.text_encoder), "text_encoder_2": (pipe.tokenizer_2,
                                                                                      pipe.text_encoder_2)}
    for encoder_name, (tokenizer, encoder) in pairs.items():
        if path.is_dir():  # diffusers: a folder with one learned_embeds file per encoder
            pipe.load_textual_inversion(str(path), subfolder=encoder_name, token=token, tokenizer=tokenizer,
                                        text_encoder=encoder)
        else:  # the others: {clip_l, clip_g}, one tensor per encoder (as diffusers' docs load them)
            tensor = load_file(path)[{"text_encoder": "clip_l", "text_encoder_2": "clip_g"}[encoder_name]]
            pipe.load_textual_inversion(tensor, token=token, tokenizer=tokenizer, text_encoder=encoder)
        ids = tokenizer.convert_tokens_to_ids([token, f"{token}_1"])
        assert torch.equal(encoder.get_input_embeddings().weight[ids], identity.encoder_embeddings[encoder_name])
    with torch.no_grad():
        loaded = pipe.encode_prompt(f"a photo of {token}", device="cpu", num_images_per_prompt=1,
                                    do_classifier_free_guidance=False)
    for theirs, own in zip(loaded, sdxl_reference):
        if own is not None:
            torch.testing.assert_close(theirs, own, atol=1e-6, rtol=0)


class _Payload:
    """Unpickling this creates the marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


WRITERS = {
    "torch.save": lambda data, stream: torch.save(data, stream),
    "torch.save-legacy": lambda data, stream: torch.save(data, stream, _use_new_zipfile_serialization=False),
    "pickle-protocol-2": lambda data, stream: pickle.dump(data, stream, protocol=2),
    "pickle-default": lambda data, stream: pickle.dump(data, stream),
}


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("suffix", [".pt", ".bin"])
def test_a_pickle_carrying_code_is_refused_and_never_runs(tmp_path, writer, suffix):
    marker = tmp_path / "payload-ran"
    path = tmp_path / f"evil{suffix}"
    data = {"string_to_param": {"*": torch.zeros(1, WIDTH)}, "name": _Payload(marker)}
    with path.open("wb") as stream:
        WRITERS[writer](data, stream)
    with pytest.raises(IdentityError, match=r"carries Python code or objects .*was not loaded") as refused:
        import_embedding(path, "alice")
    assert not marker.exists()
    assert "open" in str(refused.value)  # it says what the file would have called


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated_files_are_refused(tmp_path, fmt):
    path = _export(_identity(), fmt, tmp_path)
    cut = tmp_path / f"cut{path.suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IdentityError, match="not a readable"):
        import_embedding(cut, "alice")


def _save(path: Path, data: object) -> Path:
    if path.suffix == ".safetensors":
        save_file(data, path)
    else:
        torch.save(data, path)
    return path


NAN = torch.tensor([[0.0, float("nan")]])
BAD_FILES = [
    ("nan.safetensors", {"emb_params": NAN}, "NaN or infinite"),
    ("inf.pt", {"string_to_param": {"*": torch.tensor([[float("inf"), 1.0]])}}, "NaN or infinite"),
    ("ints.safetensors", {"emb_params": torch.ones(2, WIDTH, dtype=torch.int64)}, "not floating-point"),
    ("zero.pt", {"emb_params": torch.zeros(0, WIDTH)}, "empty"),
    ("huge.safetensors", {"emb_params": torch.zeros(500, WIDTH)}, "beyond any text encoder"),
    ("cube.pt", {"emb_params": torch.zeros(2, 2, WIDTH)}, r"shape \(2, 2, 32\)"),
    ("none.pt", {"name": "alice", "step": 3}, "holds no tensors"),
    ("two.safetensors", {"a": torch.zeros(1, WIDTH), "b": torch.zeros(1, WIDTH)}, "ambiguous"),
    ("many.pt", {"string_to_param": {"*": torch.zeros(1, 2), "x": torch.zeros(1, 2)}}, "not exactly one"),
    ("list.pt", [torch.zeros(1, WIDTH)], "holds a list"),
    ("half.safetensors", {"clip_g": torch.zeros(2, 1280)}, "without its clip_l"),
    ("uneven.safetensors", {"clip_l": torch.zeros(2, 768), "clip_g": torch.zeros(3, 1280)}, "clip_l 2, clip_g 3"),
]


@pytest.mark.parametrize(("file_name", "data", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_embeddings_are_refused_naming_the_problem(tmp_path, file_name, data, message):
    with pytest.raises(IdentityError, match=message):
        import_embedding(_save(tmp_path / file_name, data), "alice")


def test_other_bad_inputs_are_refused(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(IdentityError, match="empty"):
        import_embedding(tmp_path / "empty.pt", "alice")
    with pytest.raises(IdentityError, match="does not exist"):
        import_embedding(tmp_path / "missing.safetensors", "alice")
    with pytest.raises(IdentityError, match=r"neither a \.safetensors"):
        import_embedding(_save(tmp_path / "x.ckpt", {"emb_params": torch.zeros(1, WIDTH)}), "alice")
    with pytest.raises(IdentityError, match="holds no learned_embeds"):
        import_embedding(tmp_path, "alice")
    good = _save(tmp_path / "good.safetensors", {"emb_params": torch.zeros(1, WIDTH)})
    with pytest.raises(IdentityError, match="characters"):
        import_embedding(good, "../etc")


def test_a_wrong_width_names_both_widths(tmp_path):
    path = _export(_identity(width=768), "kohya", tmp_path)
    with pytest.raises(IdentityError, match=r"width 768.*needs width 32"):
        import_embedding(path, "alice", model_width=32)
    assert import_embedding(path, "alice", model_width=768).embeddings.shape == (2, 768)
    with pytest.raises(IdentityError, match="no embedding for the model's text_encoder_2"):
        import_embedding(path, "alice", model_width={"text_encoder": 768, "text_encoder_2": 1280})


def test_an_sdxl_embedding_is_refused_for_a_one_encoder_model_whose_width_matches_its_clip_l(tmp_path):
    path = _export(_sdxl_identity(), "comfyui", tmp_path)
    with pytest.raises(IdentityError, match=r"an SDXL embedding .*this model has one text encoder"):
        import_embedding(path, "alice", model_width={"text_encoder": 768})
    assert import_embedding(path, "alice", model_width=768).embeddings.shape == (2, 768)  # first width only


def test_other_tools_shapes_are_understood(tmp_path):
    vector = torch.randn(WIDTH)
    cases = {
        "vector.safetensors": ({"<cat-toy>": vector}, "diffusers"),
        "bare.pt": (vector.expand(3, -1).clone(), "tensor"),
        "extras.pt": ({"embedding": vector, "name": "cat", "step": 12}, "single-tensor"),
        "comfy-sd1.safetensors": ({"clip_l": vector[None]}, "diffusers"),
    }
    for file_name, (data, source_format) in cases.items():
        imported = import_embedding(_save(tmp_path / file_name, data), "cat")
        assert imported.metadata["source_format"] == source_format
        assert imported.embeddings.shape[1] == WIDTH and torch.equal(imported.embeddings[0], vector)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    _save(legacy / "learned_embeds.safetensors", {"<cat>": vector[None]})
    assert torch.equal(import_embedding(legacy, "cat").embeddings, vector[None])


def test_export_arguments_are_checked(tmp_path):
    identity = _identity()
    with pytest.raises(UsageError, match="Unknown export format"):
        export_identity(identity, "png", tmp_path / "alice.png")
    with pytest.raises(UsageError, match="prompt word is the file name"):
        export_identity(identity, "comfyui", tmp_path / "alice.safetensors", token="<alice>")
    with pytest.raises(UsageError, match=r"\.pt or \.bin file"):
        export_identity(identity, "a1111", tmp_path / "alice.safetensors")
    with pytest.raises(UsageError, match="cannot be used in a prompt"):
        export_identity(identity, "diffusers", tmp_path / "alice.safetensors", token="two words")
    identity.encoder_embeddings["text_encoder"][0, 0] = float("nan")
    with pytest.raises(IdentityError, match="non-finite"):
        export_identity(identity, "kohya", tmp_path / "alice.safetensors")
    assert not (tmp_path / "alice.safetensors").exists()


def test_safetensors_exports_record_where_they_came_from(tmp_path):
    with safe_open(str(_export(_identity(), "comfyui", tmp_path)), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["name"] == "alice" and metadata["exported_by"] == "anybody"
    assert metadata["base_model"] == "tiny"


def _valid_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        return {fmt: _export(_identity(), fmt, Path(folder)).read_bytes() for fmt in ("a1111", "kohya")}


VALID = _valid_files()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _import_outcome(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            identity = import_embedding(path, "alice")
        except IdentityError:
            return
        assert isinstance(identity, Identity) and torch.isfinite(identity.embeddings).all()


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".safetensors", ".pt", ".bin"]))
def test_arbitrary_bytes_give_an_identity_or_an_identity_error(data, suffix):
    _import_outcome(data, suffix)


@FUZZ
@given(fmt=st.sampled_from(sorted(VALID)), edits=st.lists(
    st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8),
    cut=st.integers(min_value=0))
def test_damaged_real_files_give_an_identity_or_an_identity_error(fmt, edits, cut):
    data = bytearray(VALID[fmt])
    for position, value in edits:
        data[position % len(data)] = value
    data = data[: len(data) - cut % 16]
    suffix = ".pt" if fmt == "a1111" else ".safetensors"
    _import_outcome(bytes(data), suffix)


def test_an_export_named_for_another_reader_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(UsageError, match=r"The a1111 embedding is written as a \.pt or \.bin file, not alice\.txt"):
        export_identity(_identity(), "a1111", tmp_path / "alice.txt")
    with pytest.raises(UsageError, match=r"The a1111 \(SDXL\) embedding is written as a \.safetensors file, not a\.pt"):
        export_identity(_sdxl_identity(), "a1111", tmp_path / "a.pt")
    assert list(tmp_path.iterdir()) == []


# --- each tool's own rules ----------------------------------------------------------------------------------


def _kohya_generation_loads(path: Path, vocabulary: set[str]) -> bool:
    """What kohya-ss sd-scripts' gen_img.py / gen_img_diffusers.py (and sdxl_gen_img.py, per tokenizer) do with
    `--textual_inversion_embeddings path`, step by step: the tensor's rows are the vector count, the file name
    without suffix is the token string, and `assert num_added_tokens == num_vectors_per_token` after
    `tokenizer.add_tokens(token_strings)`, which (transformers 4.44, the version kohya pins) adds a string only
    if it is not in the vocabulary yet."""
    data = load_file(path)
    embeds = data["clip_l"] if "clip_l" in data else next(iter(data.values()))
    num_vectors_per_token = embeds.size()[0]
    token_string = os.path.splitext(os.path.basename(path))[0]
    token_strings = [token_string] + [f"{token_string}{i + 1}" for i in range(num_vectors_per_token - 1)]
    num_added_tokens = 0
    for token in token_strings:
        if token not in vocabulary:
            vocabulary.add(token)
            num_added_tokens += 1
    return num_added_tokens == num_vectors_per_token


NAMES = ["alice", "bob", "anna", "john", "maria", "li", "dana", "zoe", "x"]


@pytest.fixture(scope="module")
def clip_vocabulary() -> set[str]:
    """The real CLIP vocabulary (SD 1.x, 2.x and both SDXL tokenizers share it), as anybody ships it."""
    vocabulary = set(clip_tokenizer().get_vocab())
    assert len(vocabulary) == 49408
    assert {"alice", "bob", "anna", "john"} <= vocabulary  # the names are words: the rule bites
    return vocabulary


@pytest.mark.parametrize("sdxl", [False, True], ids=["sd1", "sdxl"])
@pytest.mark.parametrize("tokens", [1, 2, 3])
def test_kohya_generation_loads_every_default_kohya_export(tmp_path, clip_vocabulary, sdxl, tokens):
    for name in NAMES:
        identity = _sdxl_identity(tokens=tokens) if sdxl else _identity(tokens=tokens, name=name)
        identity.name = name
        path = export_identity(identity, "kohya", export_path(identity, "kohya", tmp_path))
        assert _kohya_generation_loads(path, set(clip_vocabulary)), path.name
        # ... while the identity's own name, which A1111 and ComfyUI take, is refused there (the bug)
        assert not _kohya_generation_loads(path.rename(path.with_stem(name)), set(clip_vocabulary))


@pytest.mark.parametrize("stem", ["alice", "bob", "photo", "wide"])
def test_a_kohya_file_name_kohya_would_refuse_is_refused_with_a_name_it_takes(tmp_path, clip_vocabulary, stem):
    with pytest.raises(UsageError, match=rf"take the file name '{stem}' .*CLIP's vocabulary already has it\. "
                                         rf"Name the file {stem}-anybody\.safetensors") as refused:
        export_identity(_identity(), "kohya", tmp_path / f"{stem}.safetensors")
    assert list(tmp_path.iterdir()) == []
    suggested = tmp_path / refused.value.fix.split("--out ")[1].rstrip(")")
    assert _kohya_generation_loads(export_identity(_identity(), "kohya", suggested), set(clip_vocabulary))


def _invokeai_token_dim(path: Path) -> int:
    """InvokeAI's probe of a one-file embedding (`_get_base_or_raise` in invoke-ai/InvokeAI
    invokeai/backend/model_manager/configs/textual_inversion.py): 768 is SD 1, 1024 SD 2, 1280 SDXL."""
    state_dict = _raw(path)
    if "string_to_token" in state_dict:
        return next(iter(state_dict["string_to_param"].values())).shape[-1]
    if "emb_params" in state_dict:
        return state_dict["emb_params"].shape[-1]
    if "clip_g" in state_dict:
        return state_dict["clip_g"].shape[-1]
    return next(iter(state_dict.values())).shape[0]


def test_invokeai_probes_the_invokeai_export_at_its_true_width(tmp_path):
    for identity, width in ((_identity(width=768), 768), (_identity(width=1024), 1024), (_sdxl_identity(), 1280)):
        path = export_identity(identity, "invokeai", export_path(identity, "invokeai", tmp_path / str(width)))
        assert _invokeai_token_dim(path) == width
    # why diffusers' file is not the one for InvokeAI: its probe reads the vector count as the width
    assert _invokeai_token_dim(_export(_identity(width=768, tokens=2), "diffusers", tmp_path)) == 2
    assert FORMATS["invokeai"].writer == FORMATS["a1111-safetensors"].writer


# --- names, replacing, modes -------------------------------------------------------------------------------


@pytest.mark.parametrize("sdxl", [False, True], ids=["sd1", "sdxl"])
def test_every_format_has_its_own_default_path(tmp_path, sdxl):
    identity = _sdxl_identity() if sdxl else _identity()
    paths = {fmt: export_identity(identity, fmt, export_path(identity, fmt, tmp_path)) for fmt in FORMATS}
    assert len(set(paths.values())) == len(FORMATS)
    assert all(path.parent.name == fmt or path.parent.parent.name == fmt for fmt, path in paths.items())
    assert paths["a1111"].name == ("alice.safetensors" if sdxl else "alice.pt")  # A1111, ComfyUI: "alice" as is
    assert paths["comfyui"].name == "alice.safetensors" and paths["kohya"].name == "alice-anybody.safetensors"
    assert export_file_name(identity, "kohya") == "alice-anybody.safetensors"


@pytest.mark.parametrize("sdxl", [False, True], ids=["sd1", "sdxl"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_an_existing_export_is_replaced_only_when_asked(tmp_path, fmt, sdxl):
    identity = _sdxl_identity() if sdxl else _identity()
    path = export_identity(identity, fmt, export_path(identity, fmt, tmp_path))
    files = sorted(file for file in [path, *path.rglob("*")] if file.is_file())
    before = [file.read_bytes() for file in files]
    changed = _sdxl_identity() if sdxl else _identity()
    changed.encoder_embeddings["text_encoder"] = changed.encoder_embeddings["text_encoder"] + 1
    with pytest.raises(UsageError, match=r"already exists\. Add --replace to overwrite it"):
        export_identity(changed, fmt, path)
    assert [file.read_bytes() for file in files] == before
    export_identity(changed, fmt, path, replace=True)
    assert torch.equal(import_embedding(path, "alice").embeddings, changed.embeddings)


def test_the_prompt_hint_names_the_file_really_written(tmp_path):
    written = export_identity(_identity(), "a1111", tmp_path / "ex" / "alice-a1111.pt")
    hint = prompt_hint("a1111", written, token="<alice>", vectors=2)
    assert "alice-a1111.pt -> alice-a1111" in hint and "alice.pt" not in hint
    kohya = export_identity(_identity(), "kohya", export_path(_identity(), "kohya", tmp_path))
    assert "prompt word: alice-anybody" in prompt_hint("kohya", kohya, token="<alice>", vectors=2)
    assert "--num_vectors_per_token 2" in prompt_hint("kohya", kohya, token="<alice>", vectors=2)
    comfy = export_identity(_identity(), "comfyui", export_path(_identity(), "comfyui", tmp_path))
    assert "prompt word: embedding:alice" in prompt_hint("comfyui", comfy, token="<alice>", vectors=2)
    invoke = export_identity(_identity(), "invokeai", export_path(_identity(), "invokeai", tmp_path))
    assert "prompt word: <alice>" in prompt_hint("invokeai", invoke, token="<alice>", vectors=2)
    folder = export_identity(_sdxl_identity(), "diffusers", tmp_path / "xl")
    assert "subfolder='text_encoder_2'" in prompt_hint("diffusers", folder, token="<al>", vectors=2)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_exported_files_get_the_mode_the_umask_gives_a_new_file(tmp_path, umask):
    previous = os.umask(umask)
    try:
        written = [export_identity(identity, fmt, export_path(identity, fmt, tmp_path / f"{fmt}-{index}"))
                   for fmt in FORMATS for index, identity in enumerate((_identity(), _sdxl_identity()))]
    finally:
        os.umask(previous)
    for path in written:
        for file in [path, *path.rglob("*")]:
            expected = (0o777 if file.is_dir() else 0o666) & ~umask
            assert stat.S_IMODE(file.stat().st_mode) == expected, file


# --- diffusers' own training output, and the original textual-inversion code --------------------------------


def _diffusers_sdxl_training_output(folder: Path, token: str = "<cat-toy>", vectors: int = 2,
                                    widths: tuple[int, int] = (768, 1280)) -> dict[str, torch.Tensor]:
    """An output folder laid out as diffusers' examples/textual_inversion/textual_inversion_sdxl.py leaves it:
    `save_progress` writes {placeholder_token: rows} with metadata {"format": "pt"} for each text encoder,
    the final pair and a `-steps-N` pair per --save_steps, beside accelerate's checkpoint and the logs."""
    generator = torch.Generator().manual_seed(3)
    rows = {"learned_embeds": torch.randn(vectors, widths[0], generator=generator),
            "learned_embeds_2": torch.randn(vectors, widths[1], generator=generator)}
    folder.mkdir(parents=True)
    for stem, value in rows.items():
        for name in (f"{stem}.safetensors", f"{stem}-steps-500.safetensors"):
            save_file({token: value.detach().cpu()}, folder / name, metadata={"format": "pt"})
    (folder / "checkpoint-500").mkdir()
    (folder / "logs").mkdir()
    return {"text_encoder": rows["learned_embeds"], "text_encoder_2": rows["learned_embeds_2"]}


SDXL_WIDTHS = {"text_encoder": 768, "text_encoder_2": 1280}


def test_diffusers_sdxl_training_output_is_imported_whole(tmp_path):
    folder = tmp_path / "textual_inversion_cat"
    expected = _diffusers_sdxl_training_output(folder)
    for source in (folder, folder / "learned_embeds.safetensors", folder / "learned_embeds_2.safetensors"):
        for width in (None, SDXL_WIDTHS):
            imported = import_embedding(source, "cat", width)
            assert imported.metadata["family"] == "sdxl" and imported.metadata["source_format"] == "diffusers"
            assert set(imported.encoder_embeddings) == set(expected)
            for encoder, value in expected.items():
                assert torch.equal(imported.encoder_embeddings[encoder], value)
    with pytest.raises(IdentityError, match="one text encoder"):  # both halves are there: SDXL, not SD 1.x
        import_embedding(folder, "cat", {"text_encoder": 768})


def test_an_sdxl_training_output_with_one_file_missing_names_it(tmp_path):
    folder = tmp_path / "out"
    _diffusers_sdxl_training_output(folder)
    (folder / "learned_embeds.safetensors").unlink()
    with pytest.raises(IdentityError, match=r"holds learned_embeds_2\.safetensors, the second text encoder's "
                                            r"embedding .* but not learned_embeds\.safetensors"):
        import_embedding(folder, "cat")
    folder = tmp_path / "other"
    _diffusers_sdxl_training_output(folder)
    (folder / "learned_embeds_2.safetensors").unlink()
    with pytest.raises(IdentityError, match=r"holds learned_embeds\.safetensors but not "
                                            r"learned_embeds_2\.safetensors: an SDXL model needs both"):
        import_embedding(folder, "cat", SDXL_WIDTHS)
    # alone, learned_embeds.safetensors is what the SD 1.x / 2.x example (textual_inversion.py) writes
    assert set(import_embedding(folder, "cat", {"text_encoder": 768}).encoder_embeddings) == {"text_encoder"}
    sdxl_export = export_identity(_sdxl_identity(), "diffusers", tmp_path / "xl")
    (sdxl_export / "text_encoder" / "learned_embeds.safetensors").unlink()
    with pytest.raises(IdentityError, match=r"has no text_encoder/learned_embeds\.safetensors, the embedding "
                                            "of its first text encoder"):
        import_embedding(sdxl_export, "cat")


def _original_textual_inversion_pt(path: Path, extra: object = None) -> Path:
    """What rinongal/textual_inversion's EmbeddingManager.save writes: torch.save of {"string_to_token":
    {"*": tensor(id)}, "string_to_param": nn.ParameterDict({"*": Parameter((n, width))})}."""
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(2, 768))})
    data = {"string_to_token": {"*": torch.tensor(265)}, "string_to_param": params}
    if extra is not None:
        data["extra"] = extra
    torch.save(data, path)
    return path


def test_the_original_textual_inversion_pt_is_named_and_the_way_out_given(tmp_path):
    with pytest.raises(IdentityError) as refused:
        import_embedding(_original_textual_inversion_pt(tmp_path / "embeddings_gs-6099.pt"), "cat")
    message = str(refused.value)
    assert "from the original textual-inversion code" in message and "nn.ParameterDict" in message
    assert "re-save it as safetensors" in message and "__builtin__" not in message
    marker = tmp_path / "payload-ran"  # the same structure carrying code is still refused as code, never run
    with pytest.raises(IdentityError, match=r"carries Python code .*open"):
        import_embedding(_original_textual_inversion_pt(tmp_path / "evil.pt", _Payload(marker)), "cat")
    assert not marker.exists()
