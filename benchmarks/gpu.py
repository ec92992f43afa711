"""The GPU measurement: full-size SD 1.5 (512 px) and SDXL (1024 px) architectures with random weights,
batch 2, bf16, 50 timed steps, one command:

    python benchmarks/gpu.py                          # both models, writes benchmarks/results/gpu.json
    python benchmarks/gpu.py --models sd15 --steps 20 # less
    python benchmarks/gpu.py --models tiny --device cpu --dtype bf16 --resolution 128 --steps 3   # a dry run

For each model: the floor (text encoders and UNet forward and backward), `anybody.learn` (Celeb Basis
defaults: the loss read every 10 steps, fused AdamW) with and without gradient checkpointing, and with
channels-last and torch.compile; seconds per step (wall clock between two points where the device is
waited for), the loop/floor ratio, the peak memory torch allocated on the GPU (reset before each), and the
projected seconds per identity at 800 steps: the fixed part of one run (face, views, identity file: its
wall time less its steps) plus 800 steps. The goal: under 15 s per identity for SD 1.5 on one H100.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.training_step import floor_on, learn_timed, load, peak_memory_mb  # noqa: E402

RESOLUTION = {"sd15": 512, "sd2": 768, "sdxl": 1024, "tiny": 128}
STEPS_PER_IDENTITY = 800
VARIANTS = {  # name: LearnConfig overrides
    "loop": {},
    "loop, gradient checkpointing": {"gradient_checkpointing": True},
    "loop, channels-last": {"channels_last": True},
    "loop, compile": {"compile": True},
}


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure(model: str, device: str, dtype: str, resolution: int, steps: int, warmup: int, batch: int,
            variants: list[str]) -> dict:
    import torch

    pipe = load(model, device, dtype)
    where = pipe.unet.device
    reset_peak(where)
    result = {"model": model, "resolution": resolution, "batch": batch, "dtype": str(pipe.unet.dtype),
              "steps": steps, "device": torch.cuda.get_device_name(where) if where.type == "cuda" else "cpu"}
    result["floor"] = {"seconds_per_step": floor_on(pipe, resolution, steps, warmup, batch),
                       "peak_mb": peak_memory_mb(where)}
    print(f"{model}: floor {result['floor']['seconds_per_step']:.4f} s/step, "
          f"peak {result['floor']['peak_mb']:.0f} MiB", flush=True)
    for name in variants:
        reset_peak(where)
        started = time.perf_counter()
        per_step = learn_timed(pipe, resolution, steps, warmup, batch, **VARIANTS[name])
        total = time.perf_counter() - started
        fixed = max(total - (warmup + steps) * per_step, 0.0)
        pipe.unet.to(memory_format=torch.contiguous_format)
        if VARIANTS[name].get("gradient_checkpointing"):
            pipe.unet.disable_gradient_checkpointing()
        result[name] = {"seconds_per_step": per_step, "peak_mb": peak_memory_mb(where),
                        "ratio_to_floor": per_step / result["floor"]["seconds_per_step"],
                        "fixed_seconds": fixed,
                        "projected_seconds_per_identity": fixed + STEPS_PER_IDENTITY * per_step}
        print(f"{model}: {name}: {per_step:.4f} s/step ({result[name]['ratio_to_floor']:.3f} x floor), peak "
              f"{result[name]['peak_mb']:.0f} MiB, fixed {fixed:.1f} s, projected "
              f"{result[name]['projected_seconds_per_identity']:.1f} s per identity at {STEPS_PER_IDENTITY} steps",
              flush=True)
    del pipe
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["sd15", "sdxl"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--resolution", type=int, help="default: each model's own (SD 1.5 512, SDXL 1024)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu.json")
    args = parser.parse_args()
    results = []
    for model in args.models:
        results.append(measure(model, args.device, args.dtype, args.resolution or RESOLUTION[model], args.steps,
                               args.warmup, args.batch, args.variants))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")  # after each model, in case the next fails
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
