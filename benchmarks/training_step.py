"""Time per training step and peak memory: anybody's learning loop against the bare floor.

The floor is what any method of this kind must pay: the frozen text encoder and UNet forward and backward
of the same batch (gradient flowing back into the token table). The loop is `anybody.learn` itself, timed
step by step through its callback. Each runs in its own process (so peak memory is its own), in one run
of this script, and the script prints their ratio.

    python benchmarks/training_step.py                      # tiny model, its own size (128 px)
    python benchmarks/training_step.py --model sd15 --resolution 256 --steps 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_memory_mb(device=None) -> float:
    """The peak memory in MiB: on a GPU what torch allocated there, else the process's peak resident set
    (VmHWM)."""
    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synchronize(device) -> None:
    """Wait for the device, so that a clock read afterwards counts its work (a no-op on the CPU)."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def load(model: str, device: str = "cpu", dtype: str | None = None):
    """A pipeline: "sd15", "sd2" or "sdxl" (full-size random weights), or anything load_pipeline takes."""
    if model in ("sd15", "sd2", "sdxl"):
        import torch

        from anybody.models.loading import pick_dtype
        from benchmarks import architectures

        pipe = {"sd15": architectures.random_sd15, "sd2": architectures.random_sd2,
                "sdxl": architectures.random_sdxl}[model]()
        return pipe.to(torch.device(device), pick_dtype(torch.device(device), dtype))
    from anybody.models import load_pipeline

    return load_pipeline(model, device=device, dtype=dtype)


def floor_on(pipe, resolution: int, steps: int, warmup: int, batch: int) -> float:
    """Seconds per step of the floor on a loaded pipeline: every text encoder and the UNet forward and
    backward, as the family's pipeline feeds them, the gradient flowing back into the token tables."""
    import torch

    from anybody.learning.conditioning import PromptEncoder
    from anybody.models import text_encoders

    device = pipe.unet.device
    text = PromptEncoder(pipe, [], {}, resolution)
    tables = [encoder.get_input_embeddings().weight for _, _, encoder in text_encoders(pipe)]
    for table in tables:
        table.requires_grad_(True)
    ids = text.tokenize(["a photo of a face of sks person"] * batch)
    size = resolution // pipe.vae_scale_factor
    latents = torch.randn(batch, pipe.unet.config.in_channels, size, size, device=device)
    try:
        for step in range(warmup + steps):
            if step == warmup:
                synchronize(device)
                started = time.perf_counter()
            noise = torch.randn_like(latents)
            timesteps = torch.randint(1000, (batch,), device=device)
            condition = text(ids)
            prediction = pipe.unet((latents + noise).to(pipe.unet.dtype), timesteps, condition.hidden,
                                   added_cond_kwargs=condition.added).sample
            torch.nn.functional.mse_loss(prediction.float(), noise).backward()
            for table in tables:
                table.grad = None
        synchronize(device)
        return (time.perf_counter() - started) / steps
    finally:
        text.remove()
        for table in tables:
            table.requires_grad_(False)


def learn_timed(pipe, resolution: int, steps: int, warmup: int, batch: int, photos=None, names=None,
                **overrides) -> float:
    """Seconds per step of `anybody.learn` on a loaded pipeline (after `warmup` steps, at least 1), from the
    wall clock between two callbacks that wait for the device, so that a GPU's queued work is counted."""
    from anybody.learning import LearnConfig, learn

    device = pipe.unet.device
    marks: dict[int, float] = {}

    def mark(step: int, loss: float) -> None:
        if step in (warmup, warmup + steps):
            synchronize(device)
            marks[step] = time.perf_counter()

    config = LearnConfig(steps=warmup + steps, batch_size=batch, views=4, resolution=resolution,
                         checkpoint_every=10**9, **overrides)
    with tempfile.TemporaryDirectory() as library:
        learn(photos or ROOT / "anybody" / "data" / "sample_face.jpg", names or "bench", pipe, config,
              library=library, progress=False, callback=mark)
    return (marks[warmup + steps] - marks[warmup]) / steps


def floor(model: str, resolution: int, steps: int, warmup: int, batch: int) -> dict:
    pipe = load(model)
    return {"seconds_per_step": floor_on(pipe, resolution, steps, warmup, batch), "peak_mb": peak_memory_mb()}


def loop(model: str, resolution: int, steps: int, warmup: int, batch: int) -> dict:
    pipe = load(model)
    return {"seconds_per_step": learn_timed(pipe, resolution, steps, warmup, batch), "peak_mb": peak_memory_mb()}


def step_parser(description: str | None) -> argparse.ArgumentParser:
    """The options of a per-step timing: model, resolution, timed and warm-up steps, batch."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny, sd15 (full size, random weights) or any model")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    return parser


def main() -> None:
    parser = step_parser(__doc__)
    parser.add_argument("--child", choices=("floor", "loop"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = (args.model, args.resolution, args.steps, args.warmup, args.batch)
    if args.child:
        print(json.dumps((floor if args.child == "floor" else loop)(*settings)))
        return
    results = {}
    for child in ("floor", "loop"):
        command = [sys.executable, __file__, "--child", child, "--model", args.model, "--resolution",
                   str(args.resolution), "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch",
                   str(args.batch)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[child] = json.loads(output.strip().splitlines()[-1])
    f, lp = results["floor"], results["loop"]
    print(f"model {args.model}, {args.resolution} px, batch {args.batch}, {args.steps} timed steps, CPU")
    print(f"  floor (text encoder + UNet forward and backward): {f['seconds_per_step']:.4f} s/step, "
          f"peak {f['peak_mb']:.0f} MiB")
    print(f"  anybody learning loop:                            {lp['seconds_per_step']:.4f} s/step, "
          f"peak {lp['peak_mb']:.0f} MiB")
    print(f"  ratio loop / floor: time {lp['seconds_per_step'] / f['seconds_per_step']:.3f}, "
          f"peak memory {lp['peak_mb'] / f['peak_mb']:.3f}")


if __name__ == "__main__":
    main()
