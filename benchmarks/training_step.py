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
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_memory_mb() -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(model: str):
    """A pipeline: "sd15", "sd2" or "sdxl" (full-size random weights), or anything load_pipeline takes."""
    if model in ("sd15", "sd2", "sdxl"):
        from benchmarks import architectures

        return {"sd15": architectures.random_sd15, "sd2": architectures.random_sd2,
                "sdxl": architectures.random_sdxl}[model]()
    from anybody.models import load_pipeline

    return load_pipeline(model, device="cpu")


def floor(model: str, resolution: int, steps: int, warmup: int, batch: int) -> dict:
    import torch

    pipe = load(model)
    table = pipe.text_encoder.get_input_embeddings().weight
    table.requires_grad_(True)
    ids = pipe.tokenizer(["a photo of a face of sks person"] * batch, padding="max_length",
                         max_length=pipe.tokenizer.model_max_length, return_tensors="pt").input_ids
    size = resolution // pipe.vae_scale_factor
    latents = torch.randn(batch, pipe.unet.config.in_channels, size, size)
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        noise = torch.randn_like(latents)
        timesteps = torch.randint(1000, (batch,))
        text = pipe.text_encoder(ids)[0]
        prediction = pipe.unet(latents + noise, timesteps, text).sample
        torch.nn.functional.mse_loss(prediction, noise).backward()
        table.grad = None
        times.append(time.perf_counter() - start)
    return {"seconds_per_step": statistics.median(times[warmup:]), "peak_mb": peak_memory_mb()}


def loop(model: str, resolution: int, steps: int, warmup: int, batch: int) -> dict:
    from anybody.learning import LearnConfig, learn

    pipe = load(model)
    stamps: list[float] = []
    config = LearnConfig(steps=warmup + steps + 1, batch_size=batch, views=4, resolution=resolution,
                         checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as library:
        learn(ROOT / "anybody" / "data" / "sample_face.jpg", "bench", pipe, config, library=library,
              progress=False, callback=lambda step, loss: stamps.append(time.perf_counter()))
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    return {"seconds_per_step": statistics.median(gaps[warmup:]), "peak_mb": peak_memory_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny, sd15 (full size, random weights) or any model")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
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
