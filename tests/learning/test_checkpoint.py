"""Training checkpoints: what is saved comes back whole; anything else is a TrainingError, never a crash."""

from __future__ import annotations

import json

import pytest
import torch

from anybody.errors import TrainingError
from anybody.learning.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from anybody.storage import write_safetensors


def _state() -> TrainingState:
    return TrainingState(
        step=7,
        learner={"mappers.text_encoder.0.weight": torch.randn(4, 3)},
        optimizer={"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.randn(4, 3)}},
                   "param_groups": [{"lr": 0.005, "params": [0]}]},
        random_states={"cpu": torch.get_rng_state()},
        recipe={"steps": 100, "seed": 0},
    )


def test_a_checkpoint_comes_back_as_it_was_saved(tmp_path):
    state = _state()
    save_checkpoint(tmp_path / "run.safetensors", state)
    loaded = load_checkpoint(tmp_path / "run.safetensors")
    assert loaded.step == 7 and loaded.recipe == state.recipe
    assert loaded.optimizer["param_groups"] == state.optimizer["param_groups"]
    assert torch.equal(loaded.optimizer["state"][0]["exp_avg"], state.optimizer["state"][0]["exp_avg"])
    for section in ("learner", "random_states"):
        saved, back = getattr(state, section), getattr(loaded, section)
        assert saved.keys() == back.keys() and all(torch.equal(saved[key], back[key]) for key in saved)


@pytest.mark.parametrize("foreign", ["weights", "optimizer.x.exp_avg", "optimizer.0", "unknown.tensor", "learner."])
def test_a_tensor_anybody_does_not_write_is_a_training_error(tmp_path, foreign):
    path = tmp_path / "run.safetensors"
    metadata = {"step": "1", "recipe": "{}", "param_groups": json.dumps([])}
    write_safetensors(path, {"learner.w": torch.zeros(1), foreign: torch.zeros(1)}, metadata)
    with pytest.raises(TrainingError, match="Start again without --resume"):
        load_checkpoint(path)


@pytest.mark.parametrize("metadata", [{}, {"step": "one", "recipe": "{}", "param_groups": "[]"},
                                      {"step": "1", "recipe": "{", "param_groups": "[]"}])
def test_missing_or_broken_metadata_is_a_training_error(tmp_path, metadata):
    path = tmp_path / "run.safetensors"
    write_safetensors(path, {"learner.w": torch.zeros(1)}, metadata)
    with pytest.raises(TrainingError, match="cannot be read"):
        load_checkpoint(path)


def test_a_truncated_checkpoint_is_a_training_error(tmp_path):
    path = tmp_path / "run.safetensors"
    save_checkpoint(path, _state())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(TrainingError, match="cannot be read"):
        load_checkpoint(path)
