"""The loop reads the loss from the device only every `check_every` steps (and on the first step, before
each checkpoint and at the end), yet a loss that stops being finite is still caught within that many steps,
and the message names the checkpoint that is really on disk. `--compile` learns the same."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from anybody.errors import TrainingError
from anybody.learning import LearnConfig
from anybody.learning.checkpoint import load_checkpoint
from anybody.learning.targets import denoising_target
from anybody.learning.train import fit, prepare

FAST = {"views": 2, "batch_size": 1}


def run_with(pipe, photo, library, config, *, target_of=None, callback=None):
    run = prepare([photo], ["eileen"], pipe, config, library=library, progress=False)
    try:
        fit(run, target=target_of(run) if target_of else None, callback=callback, progress=False)
    finally:
        run.text.remove()
    return run


def poisoned_at(step: int):
    """A denoising target that is NaN at `step` (1-based), as a loss that overflows would be."""
    def target_of(run):
        plain = denoising_target(run.noise_schedule)
        calls = []

        def target(batch):
            calls.append(1)
            wanted = plain(batch)
            return wanted * float("nan") if len(calls) == step else wanted
        return target
    return target_of


def test_a_nan_at_step_k_is_caught_within_check_every_steps_naming_the_checkpoint_on_disk(tiny_pipe, sample_photo,
                                                                                         library):
    poisoned, every = 5, 3
    config = LearnConfig(**FAST, steps=20, check_every=every, checkpoint_every=4)
    seen: list[int] = []
    with pytest.raises(TrainingError) as raised:
        run_with(tiny_pipe, sample_photo, library, config, target_of=poisoned_at(poisoned),
                 callback=lambda step, loss: seen.append(step))
    # Checks at steps 1, 3, 4 (a checkpoint), 6: the NaN of step 5 is read at step 6, and named as step 5.
    assert raised.value.problem.startswith(f"Learning diverged at step {poisoned} ")
    assert max(seen) < poisoned + every
    on_disk = load_checkpoint(library / ".checkpoints" / "eileen.safetensors")
    assert on_disk.step == 4
    assert "the last good checkpoint (step 4) is kept" in str(raised.value)
    with safe_open(str(library / ".checkpoints" / "eileen.safetensors"), framework="pt") as handle:
        assert all(torch.isfinite(handle.get_tensor(key)).all() for key in handle.keys()  # noqa: SIM118
                   if key.startswith("learner."))


def test_a_nan_before_the_first_checkpoint_says_none_was_written(tiny_pipe, sample_photo, library):
    config = LearnConfig(**FAST, steps=20, check_every=3, checkpoint_every=100)
    with pytest.raises(TrainingError, match=r"diverged at step 2 .*no checkpoint had been written yet"):
        run_with(tiny_pipe, sample_photo, library, config, target_of=poisoned_at(2))
    assert not (library / ".checkpoints" / "eileen.safetensors").exists()


def test_the_callback_gets_the_last_loss_read_on_the_steps_in_between(tiny_pipe, sample_photo, library):
    losses: dict[int, float] = {}
    run = run_with(tiny_pipe, sample_photo, library, LearnConfig(**FAST, steps=7, check_every=3),
                   callback=lambda step, loss: losses.update({step: loss}))
    # Read at steps 1, 3, 6 and 7 (the last): steps 2, 4 and 5 repeat the last read value.
    assert losses[2] == losses[1] and losses[4] == losses[5] == losses[3]
    assert len({losses[1], losses[3], losses[6], losses[7]}) == 4
    assert run.loss == losses[7]


@pytest.mark.slow
def test_compiling_the_unet_learns_the_same(tiny_pipe, sample_photo, tmp_path):
    """torch.compile (Inductor, with the C++ compiler on the CPU) gives the same losses within rounding."""
    losses: dict[bool, list[float]] = {}
    for compiled in (False, True):
        config = LearnConfig(**FAST, steps=3, check_every=1, compile=compiled)
        losses[compiled] = []
        run = run_with(tiny_pipe, sample_photo, tmp_path / str(compiled), config,
                       callback=lambda step, loss, out=losses[compiled]: out.append(loss))
        assert isinstance(run.denoiser, torch._dynamo.eval_frame.OptimizedModule) == compiled
    assert losses[True] == pytest.approx(losses[False], rel=1e-3)
