"""Shared fixtures: one ANYBODY_HOME per test session (the tiny models are built once), and the tiny
pipelines loaded once per session and put back as they were after every test that uses them."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anybody.interfaces.cli import CPU_THREADS

for _variable, _value in CPU_THREADS.items():  # as the CLI does, before any test imports torch
    os.environ.setdefault(_variable, _value)

SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "anybody" / "data" / "sample_face.jpg"


@pytest.fixture(scope="session", autouse=True)
def anybody_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("anybody-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("ANYBODY_HOME", str(home))
    patch.delenv("ANYBODY_MODEL", raising=False)
    yield home
    patch.undo()


class Snapshot:
    """What tests change on a loaded pipeline, saved so it can be put back: each tokenizer (new tokens), each
    text encoder's token table (new or rewritten rows), hooks, attention processors, scheduler, stage switch."""

    def __init__(self, pipe) -> None:
        from anybody.models import text_encoders

        self.tokenizers = {attribute: copy.deepcopy(getattr(pipe, attribute))
                           for attribute in ("tokenizer", "tokenizer_2") if getattr(pipe, attribute, None) is not None}
        self.tables = {name: (encoder.get_input_embeddings(), encoder.get_input_embeddings().weight.detach().clone(),
                              encoder.config.vocab_size) for name, _, encoder in text_encoders(pipe)}
        self.processors = pipe.unet.attn_processors
        self.scheduler = pipe.scheduler

    def restore(self, pipe) -> None:
        import torch

        from anybody.models import text_encoders

        for attribute, tokenizer in self.tokenizers.items():
            setattr(pipe, attribute, copy.deepcopy(tokenizer))
        for name, _, encoder in text_encoders(pipe):
            embedding, weight, vocab_size = self.tables[name]  # resizing may have swapped the module's weight
            embedding.weight = torch.nn.Parameter(weight.clone(), requires_grad=embedding.weight.requires_grad)
            embedding.num_embeddings = weight.shape[0]
            encoder.set_input_embeddings(embedding)
            encoder.config.vocab_size = vocab_size
        for model in (pipe.unet, *(encoder for _, _, encoder in text_encoders(pipe))):
            for module in model.modules():  # anybody's hooks only: transformers keeps its own there too
                for hooks in (module._forward_hooks, module._forward_pre_hooks):
                    for key in [key for key, hook in hooks.items() if _is_anybodys(hook)]:
                        del hooks[key]
        pipe.unet.set_attn_processor(dict(self.processors))  # diffusers empties the dict it is given
        pipe.unet.disable_gradient_checkpointing()
        pipe.scheduler = self.scheduler
        if hasattr(pipe, "anybody_stage_switch"):
            del pipe.anybody_stage_switch


def _is_anybodys(hook: object) -> bool:
    return str(getattr(hook, "__module__", "")).startswith("anybody.")


@pytest.fixture(scope="session")
def _tiny_pipelines(anybody_home: Path) -> dict:
    return {}


@pytest.fixture
def tiny_pipeline(_tiny_pipelines: dict) -> Iterator[Callable]:
    """`tiny_pipeline(model)`: a built-in tiny pipeline ("tiny", "tiny-sd2", "tiny-sdxl"), loaded once per
    session; the tokens, rows, hooks and processors a test adds are taken away after it."""
    from anybody.models import load_pipeline

    used: list[str] = []

    def get(model: str = "tiny"):
        if model not in _tiny_pipelines:
            pipe = load_pipeline(model, device="cpu")
            _tiny_pipelines[model] = (pipe, Snapshot(pipe))
        used.append(model)
        return _tiny_pipelines[model][0]

    yield get
    for model in set(used):
        pipe, snapshot = _tiny_pipelines[model]
        snapshot.restore(pipe)


@pytest.fixture
def tiny_pipe(tiny_pipeline: Callable):
    """The tiny SD 1.x pipeline (see `tiny_pipeline`)."""
    return tiny_pipeline("tiny")


@pytest.fixture
def anybody_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, attached to the "anybody" logger itself (the CLI turns that logger's propagation off while a
    command runs), at WARNING: what a user sees as WARNING: lines."""
    import logging

    logger = logging.getLogger("anybody")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="anybody")
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def sample_photo() -> Path:
    return SAMPLE_PHOTO


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"
