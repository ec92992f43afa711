"""Learning on the tiny model with the real face pipeline: files, repeatability, resume, divergence."""

from __future__ import annotations

import math

import pytest
import torch

from anybody.errors import IdentityError, TrainingError, UsageError
from anybody.face import prepare_face
from anybody.identity import Identity
from anybody.identity.file import face_thumbnail
from anybody.learning import Interrupted, LearnConfig, learn

FAST = {"steps": 6, "views": 4, "checkpoint_every": 2}


def stop_at(stop: int):
    """A callback that interrupts learning after step `stop`, as Ctrl-C would."""
    def callback(step: int, loss: float) -> None:
        if step == stop:
            raise KeyboardInterrupt
    return callback


def test_learning_writes_a_complete_identity_file(tiny_pipe, sample_photo, library):
    identity = learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)[0]
    width = tiny_pipe.text_encoder.config.hidden_size
    loaded = Identity.load("eileen", library)
    assert loaded.path == library / "eileen.safetensors" == identity.path
    assert loaded.embeddings.shape == (2, width)
    assert loaded.coefficients.shape[0] == 2 and loaded.face_descriptor.shape == (128,)
    assert torch.all(loaded.coefficients.norm(dim=-1) <= 1 + 1e-5)
    metadata = loaded.metadata
    assert metadata["method"] == "celeb-basis" and metadata["base_model"] == "tiny" and metadata["family"] == "sd1"
    assert len(metadata["basis.text_encoder"]) == 64 and metadata["training"]["steps"] == 6
    assert metadata["photo"] == sample_photo.name and "anybody_version" in metadata
    assert torch.isfinite(torch.tensor(float(metadata["final_loss"])))
    assert torch.equal(loaded.face_thumbnail, face_thumbnail(prepare_face(sample_photo).aligned))  # the face learned


@pytest.mark.slow
def test_a_taken_name_is_refused_unless_replaced(tiny_pipe, sample_photo, library):
    learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)
    with pytest.raises(IdentityError, match="already has an identity called eileen"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)
    learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST, seed=3), library=library, replace=True, progress=False)


@pytest.mark.slow
def test_the_same_seed_learns_the_same_identity(tiny_pipe, sample_photo, tmp_path):
    runs = [
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST, seed=seed), library=tmp_path / str(index),
              progress=False)[0]
        for index, seed in enumerate((0, 0, 1))
    ]
    assert torch.equal(runs[0].embeddings, runs[1].embeddings)
    assert not torch.allclose(runs[0].embeddings, runs[2].embeddings)


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_result(tiny_pipe, sample_photo, tmp_path):
    whole = learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=tmp_path / "whole",
                  progress=False)[0]

    with pytest.raises(Interrupted, match="--resume"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=tmp_path / "cut", progress=False,
              callback=stop_at(3))
    assert not (tmp_path / "cut" / "eileen.safetensors").exists()
    resumed = learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=tmp_path / "cut",
                    resume=True, progress=False)[0]
    assert torch.allclose(resumed.embeddings, whole.embeddings, atol=1e-6)


@pytest.mark.slow
def test_a_finished_run_leaves_no_checkpoint_unless_asked(tiny_pipe, sample_photo, library):
    learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)
    assert not (library / ".checkpoints").exists()  # nor an empty folder for them
    learn(sample_photo, "ada", tiny_pipe, LearnConfig(**FAST), library=library, progress=False, keep_checkpoint=True)
    assert (library / ".checkpoints" / "ada.safetensors").is_file()
    learn(sample_photo, "bob", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)
    assert [path.name for path in (library / ".checkpoints").iterdir()] == ["ada.safetensors"]


@pytest.mark.slow
def test_a_pipeline_that_learned_someone_learns_and_resumes_again(tiny_pipe, sample_photo, library):
    """learn() leaves the person's tokens in the pipeline it was given; a later run on the same pipeline finds
    the same basis, so its checkpoint resumes (the web app keeps one pipeline for every job)."""
    learn(sample_photo, "ada", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)

    with pytest.raises(Interrupted):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False,
              callback=stop_at(2))
    resumed = learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False,
                    resume=True)[0]
    assert resumed.metadata["basis.text_encoder"] == Identity.load("ada", library).metadata["basis.text_encoder"]


@pytest.mark.slow
def test_an_interrupted_run_is_not_overwritten_by_a_fresh_start(tiny_pipe, sample_photo, library):
    """Starting again without --resume would erase the interrupted run's checkpoint: refused, unless --restart."""
    with pytest.raises(Interrupted):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False,
              callback=stop_at(2))
    checkpoint = library / ".checkpoints" / "eileen.safetensors"
    saved = checkpoint.read_bytes()
    with pytest.raises(UsageError, match=r"An interrupted run of eileen left a checkpoint .* Pass --resume to "
                                         r"continue it, or --restart to discard it and start again"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False)
    assert checkpoint.read_bytes() == saved
    with pytest.raises(UsageError, match="contradict"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, resume=True, restart=True)
    learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False, restart=True)
    assert (library / "eileen.safetensors").is_file() and not checkpoint.exists()


@pytest.mark.slow
def test_resuming_needs_a_checkpoint_with_the_same_settings(tiny_pipe, sample_photo, library):
    with pytest.raises(UsageError, match="no checkpoint"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, resume=True, progress=False)
    learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST), library=library, progress=False, keep_checkpoint=True)
    (library / "eileen.safetensors").unlink()
    with pytest.raises(UsageError, match="other settings"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**FAST, learning_rate=0.5), library=library,
              resume=True, progress=False)


@pytest.mark.slow
def test_divergence_stops_with_advice_and_keeps_the_last_good_checkpoint(tiny_pipe, sample_photo, library):
    """lr 1e30 is finite, but AdamW's steps soon send the weights past float32's range."""
    from safetensors import safe_open

    config = LearnConfig(**{**FAST, "checkpoint_every": 1}, learning_rate=1e30)
    with pytest.raises(TrainingError, match=r"diverged at step (\d+) .*") as raised:
        learn(sample_photo, "eileen", tiny_pipe, config, library=library, progress=False)
    diverged = int(raised.value.problem.split("step ")[1].split()[0])
    assert f"the last good checkpoint (step {diverged - 1}) is kept" in str(raised.value)
    assert "Try a lower learning rate (--lr 1e+29)" in str(raised.value)
    assert not (library / "eileen.safetensors").exists()
    with safe_open(str(library / ".checkpoints" / "eileen.safetensors"), framework="pt") as handle:
        weights = [handle.get_tensor(key) for key in handle.keys() if key.startswith("learner.")]  # noqa: SIM118
    assert weights and all(torch.isfinite(weight).all() for weight in weights)
    fresh = library / "fresh"
    with pytest.raises(TrainingError, match="no checkpoint had been written yet"):
        learn(sample_photo, "eileen", tiny_pipe, LearnConfig(**{**FAST, "checkpoint_every": 100}, learning_rate=1e30),
              library=fresh, progress=False)


@pytest.mark.parametrize(("field", "value"), [("steps", 0), ("batch_size", 0), ("learning_rate", -1.0),
                                              ("learning_rate", math.inf), ("learning_rate", math.nan),
                                              ("attention_loss", -1.0), ("attention_loss", math.nan),
                                              ("attention_loss", math.inf), ("resolution", 100)])
def test_bad_settings_are_refused_before_any_work(field, value):
    with pytest.raises(UsageError):
        LearnConfig(**{field: value}).check()


def test_photos_and_names_must_pair_up(tiny_pipe, sample_photo, library):
    with pytest.raises(UsageError, match="2 photos and 1 name were given"):
        learn([sample_photo, sample_photo], "eileen", tiny_pipe, LearnConfig(**FAST), library=library)
    with pytest.raises(UsageError, match=r"The name alice is given twice \(alice and Alice: names are kept in lower"):
        learn([sample_photo, sample_photo], ["alice", "Alice"], tiny_pipe, LearnConfig(**FAST), library=library)
