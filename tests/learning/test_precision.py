"""Mixed precision on the CPU, the path a GPU takes: the frozen model in bf16 or fp16, the learner, its
optimizer and the loss in fp32. The target is the recovery task's teacher (the frozen model's own
prediction with planted tokens), so that "the loss falls" is measurable in a few dozen steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open

from anybody.basis import build_basis
from anybody.errors import UsageError
from anybody.generation import generate
from anybody.identity import Identity
from anybody.learning import LearnConfig
from anybody.learning.precision import check_precision, loss_scaler
from anybody.learning.targets import teacher_target
from anybody.learning.train import fit, prepare, save_identities
from anybody.models import load_pipeline, text_encoders

STEPS = 40


def planted_teacher(pipe) -> Identity:
    """Two tokens per text encoder at random unit coefficients in the encoder's celeb basis."""
    generator = torch.Generator().manual_seed(123)
    embeddings = {}
    for name, tokenizer, encoder in text_encoders(pipe):
        basis = build_basis(tokenizer, encoder.get_input_embeddings().weight)
        coefficients = torch.nn.functional.normalize(torch.randn(2, basis.rank, generator=generator), dim=-1)
        embeddings[name] = basis.embeddings(coefficients)
    return Identity("eileen", embeddings)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
@pytest.mark.parametrize("model", ["tiny", "tiny-sd2", "tiny-sdxl"])
def test_learning_in_half_precision_lowers_the_loss_and_writes_an_fp32_identity(model, dtype, sample_photo, tmp_path,
                                                                                  tiny_pipeline):
    pipe = load_pipeline(model, device="cpu", dtype=dtype)
    teacher = planted_teacher(pipe)
    config = LearnConfig(steps=STEPS, views=4, learning_rate=0.1, check_every=1, checkpoint_every=STEPS)
    run = prepare([sample_photo], ["eileen"], pipe, config, library=tmp_path, progress=False)
    losses: list[float] = []
    try:
        assert {p.dtype for p in run.learner.parameters()} == {torch.float32}
        assert run.scaler.is_enabled() == (dtype == "fp16")
        fit(run, target=teacher_target(run, {"eileen": teacher}), callback=lambda step, loss: losses.append(loss),
            progress=False)
        identity = save_identities(run)[0]
    finally:
        run.text.remove()
    assert {p.dtype for p in run.learner.parameters()} == {torch.float32}
    assert {state.dtype for group in run.optimizer.state.values() for state in group.values()
            if state.is_floating_point() and state.dim()} == {torch.float32}
    assert pipe.unet.dtype == pipe.vae.dtype == getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[dtype])
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"{model} {dtype}: loss first five {first:.3e}, last five {last:.3e}")
    assert np.isfinite(losses).all()
    assert last < first / 2  # seen: 4-10x lower after 40 steps

    with safe_open(str(identity.path), framework="pt") as handle:
        dtypes = {key: handle.get_tensor(key).dtype for key in handle.keys()}  # noqa: SIM118
    assert dtypes.pop("face.thumbnail") == torch.uint8  # the face's pixels, whatever the dtype
    assert set(dtypes.values()) == {torch.float32}
    for drawing_pipe in (pipe, tiny_pipeline(model)):  # the half-precision one, and an fp32 one
        image = generate("a photo of eileen", Identity.load(identity.path), drawing_pipe, num_inference_steps=2,
                         seed=0, progress=False).images[0]
        assert np.asarray(image).std() > 0  # NaN latents decode to one flat colour


def test_fp16_gets_a_loss_scale_and_other_dtypes_do_not():
    cpu = torch.device("cpu")
    assert loss_scaler(cpu, torch.float16).is_enabled()
    assert not loss_scaler(cpu, torch.bfloat16).is_enabled()
    assert not loss_scaler(cpu, torch.float32).is_enabled()


def test_bf16_is_refused_where_the_device_cannot_compute_in_it(monkeypatch):
    check_precision(torch.device("cpu"), torch.bfloat16)  # the CPU computes in every dtype
    check_precision(torch.device("cpu"), torch.float16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Tesla V100")
    with pytest.raises(UsageError, match=r"Tesla V100\) cannot compute in bf16.*--dtype fp16"):
        check_precision(torch.device("cuda"), torch.bfloat16)
    check_precision(torch.device("cuda"), torch.float16)
