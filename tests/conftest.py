"""Shared fixtures: one ANYBODY_HOME per test session (the tiny model is built once), fresh pipelines."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "anybody" / "data" / "sample_face.jpg"


@pytest.fixture(scope="session", autouse=True)
def anybody_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("anybody-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("ANYBODY_HOME", str(home))
    patch.delenv("ANYBODY_MODEL", raising=False)
    yield home
    patch.undo()


@pytest.fixture
def tiny_pipe():
    """A freshly loaded tiny pipeline (tests may add tokens to it)."""
    from anybody.models import load_pipeline

    return load_pipeline("tiny", device="cpu")


@pytest.fixture
def sample_photo() -> Path:
    return SAMPLE_PHOTO


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return tmp_path / "library"
