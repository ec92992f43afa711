"""Training checkpoints as safetensors (no pickle): the learner, the optimizer, the random states, the step.

Written atomically every `checkpoint_every` steps and on Ctrl-C, so `--resume` continues exactly where a
run stopped: the same seed then gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from anybody.errors import TrainingError, summarize
from anybody.storage import write_safetensors


@dataclass
class TrainingState:
    step: int
    learner: dict[str, torch.Tensor]
    optimizer: dict
    random_states: dict[str, torch.Tensor]
    recipe: dict


def save_checkpoint(path: Path, state: TrainingState) -> None:
    tensors = {f"learner.{key}": value for key, value in state.learner.items()}
    for index, slots in state.optimizer["state"].items():
        for key, value in slots.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
    tensors.update({f"random.{key}": value for key, value in state.random_states.items()})
    metadata = {"step": str(state.step), "recipe": json.dumps(state.recipe, sort_keys=True),
                "param_groups": json.dumps(state.optimizer["param_groups"])}
    write_safetensors(path, tensors, metadata)


def load_checkpoint(path: Path) -> TrainingState:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        step = int(metadata["step"])
        recipe = json.loads(metadata["recipe"])
        param_groups = json.loads(metadata["param_groups"])
    except Exception as error:
        raise TrainingError(f"The checkpoint {path} cannot be read ({summarize(error)})",
                            "Start again without --resume") from error
    optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
    sections: dict[str, dict[str, torch.Tensor]] = {"learner": {}, "random": {}}
    for key, value in tensors.items():
        section, _, rest = key.partition(".")
        if section == "optimizer" and rest.partition(".")[0].isdigit() and rest.partition(".")[2]:
            index, _, slot = rest.partition(".")
            optimizer_state.setdefault(int(index), {})[slot] = value
        elif section in sections and rest:
            sections[section][rest] = value
        else:
            raise TrainingError(f"The checkpoint {path} holds a tensor anybody does not write ({key[:60]!r})",
                                "Start again without --resume (the checkpoint is damaged or not anybody's)")
    return TrainingState(step=step, learner=sections["learner"],
                         optimizer={"state": optimizer_state, "param_groups": param_groups},
                         random_states=sections["random"], recipe=recipe)
