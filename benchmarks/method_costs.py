"""What SeFi-IDE's two ideas cost, as ratios to plain Celeb Basis measured in the same run.

- per training step: Celeb Basis + the face-wise attention loss, SeFi (per-stage K/V tokens) without and
  with the attention loss, each against plain Celeb Basis (timed through `learn`'s callback);
- per generated image: an identity with per-stage K/V tokens (the stage switch re-encodes the prompt per
  stage and picks the pair at every step) against one with a single embedding.

    python benchmarks/method_costs.py                                   # tiny, 128 px
    python benchmarks/method_costs.py --model sd15 --resolution 256 --steps 2 --image-steps 3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.training_step import load  # noqa: E402

PHOTO = ROOT / "anybody" / "data" / "sample_face.jpg"


def step_seconds(pipe, config, library: str, warmup: int) -> tuple[float, object]:
    from anybody.learning import learn

    stamps: list[float] = []
    identity = learn(PHOTO, "bench", pipe, config, library=library, replace=True, progress=False,
                     callback=lambda step, loss: stamps.append(time.perf_counter()))[0]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    return (statistics.median(gaps[warmup:]) if gaps[warmup:] else float("nan")), identity


def image_seconds(pipe, identity, steps: int, resolution: int, repeats: int = 2) -> float:
    from anybody.generation import generate

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate("a photo of bench", identity, pipe, num_images_per_prompt=1, num_inference_steps=steps,
                 height=resolution, width=resolution)
        times.append(time.perf_counter() - start)
    switch = getattr(pipe, "anybody_stage_switch", None)
    if switch is not None:
        switch.remove()
        pipe.anybody_stage_switch = None
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--image-steps", type=int, default=10, help="denoising steps per generated image")
    parser.add_argument("--images-only", action="store_true", help="only the per-image ratio (1 training step)")
    args = parser.parse_args()

    from anybody.learning import LearnConfig

    pipe = load(args.model)
    common = {"steps": args.warmup + args.steps + 1, "views": 2, "resolution": args.resolution,
              "checkpoint_every": 10**9}
    configurations = {
        "Celeb Basis": LearnConfig(**common),
        "Celeb Basis + attention loss": LearnConfig(**common, attention_loss=0.003),
        "SeFi K/V tokens, no attention loss": LearnConfig.for_method("sefi", **common, attention_loss=0.0),
        "SeFi K/V tokens + attention loss": LearnConfig.for_method("sefi", **common),
    }
    if args.images_only:
        configurations = {label: replace(configurations[label], steps=1)
                          for label in ("Celeb Basis", "SeFi K/V tokens + attention loss")}
    seconds, identities = {}, {}
    with tempfile.TemporaryDirectory() as library:
        for label, config in configurations.items():
            seconds[label], identities[label] = step_seconds(pipe, config, library, args.warmup)
    print(f"model {args.model}, {args.resolution} px, batch 2, {args.steps} timed steps each, CPU")
    if not args.images_only:
        print("per training step:")
        for label, value in seconds.items():
            print(f"  {label:38s} {value:8.4f} s   ratio {value / seconds['Celeb Basis']:.3f}")
    plain = image_seconds(pipe, identities["Celeb Basis"], args.image_steps, args.resolution)
    staged = image_seconds(pipe, identities["SeFi K/V tokens + attention loss"], args.image_steps, args.resolution)
    print(f"per image ({args.image_steps} denoising steps, guidance 7.5):")
    print(f"  single embedding {plain:.3f} s, per-stage K/V tokens {staged:.3f} s, ratio {staged / plain:.3f}")


if __name__ == "__main__":
    main()
