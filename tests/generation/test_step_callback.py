"""`generate(on_step=...)`: every denoising step of every image reported as it happens, and a drawing that
can be stopped there, keeping (and saving) the images finished before."""

from __future__ import annotations

import numpy as np
import torch

from anybody.generation import generate
from anybody.identity import Identity


def _identity(pipe) -> Identity:
    width = pipe.text_encoder.get_input_embeddings().weight.shape[1]
    return Identity(name="alice", encoder_embeddings={"text_encoder": torch.randn(2, width)},
                    metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"})


def test_every_step_of_every_image_is_reported_in_order(tiny_pipe):
    seen = []
    result = generate("a photo of alice", _identity(tiny_pipe), tiny_pipe, num_images_per_prompt=3,
                      num_inference_steps=2, batch_size=1, progress=False,
                      on_step=lambda image, step, steps: seen.append((image, step, steps)))
    assert seen == [(0, 1, 2), (0, 2, 2), (1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)]
    assert len(result.images) == 3 and not result.stopped


def test_a_stop_keeps_and_saves_the_images_finished_before_it(tiny_pipe, tmp_path):
    alice = _identity(tiny_pipe)
    calls = []

    def stop_in_the_third_image(image: int, step: int, steps: int) -> bool:
        calls.append((image, step))
        return image == 2 and step == 1

    stopped = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=4, num_inference_steps=3,
                       seed=7, batch_size=1, progress=False, out_dir=tmp_path, on_step=stop_in_the_third_image)
    assert calls[-1] == (2, 1)  # no step after the stop
    assert stopped.stopped and stopped.seeds == [7, 8] and len(stopped.images) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["00-seed7.png", "01-seed8.png", "sheet.png"]
    whole = generate("a photo of alice", alice, tiny_pipe, num_images_per_prompt=2, num_inference_steps=3, seed=7,
                     batch_size=1, progress=False)
    for kept, drawn in zip(stopped.images, whole.images):
        assert np.array_equal(np.asarray(kept), np.asarray(drawn))  # finished images, not half-drawn ones


def test_a_stop_in_the_first_image_saves_nothing(tiny_pipe, tmp_path):
    result = generate("a photo of alice", _identity(tiny_pipe), tiny_pipe, num_images_per_prompt=2,
                      num_inference_steps=3, batch_size=1, progress=False, out_dir=tmp_path / "out",
                      on_step=lambda image, step, steps: True)
    assert result.stopped and result.images == [] and result.paths == [] and result.sheet is None
    assert not any((tmp_path / "out").iterdir())
