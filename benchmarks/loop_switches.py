"""The learning loop against the floor, with and without each speed switch of the loop.

- **floor**: the frozen text encoder and UNet, forward and backward (as `training_step.py`);
- **loop**: `anybody.learn` with its defaults: the loss read every 10 steps (`check_every`), fused AdamW;
- **read every step**: `check_every=1` (what the loop did before: one wait for the device per step);
- **foreach AdamW**: the multi-tensor kernel instead of the fused one;
- **channels-last**: the UNet in channels-last memory format;
- **compile**: `torch.compile` of the frozen UNet (the first, compiling step is a warm-up and not timed).

Everything runs in one process on one loaded model, one configuration after another (`--rounds N`: N
times over, reporting the best and the median), each timed after its warm-up steps; ratios are to the
floor measured in the same run.

    python benchmarks/loop_switches.py --rounds 3                        # tiny, 128 px
    python benchmarks/loop_switches.py --model sd15 --resolution 256 --steps 3 --warmup 1
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.training_step import floor_on, learn_timed, load, step_parser  # noqa: E402

SWITCHES = {  # name: (LearnConfig overrides, optimizer kernel or None for the learner's own)
    "loop": ({}, None),
    "read every step": ({"check_every": 1}, None),
    "foreach AdamW": ({}, {"foreach": True}),
    "channels-last": ({"channels_last": True}, None),
    "compile": ({"compile": True}, None),
}


def main() -> None:
    parser = step_parser(__doc__)
    parser.add_argument("--only", nargs="*", choices=tuple(SWITCHES), help="run only these configurations")
    parser.add_argument("--reverse", action="store_true", help="the configurations in reverse order, the floor "
                        "last (run once each way and average, where the machine's load drifts)")
    parser.add_argument("--rounds", type=int, default=1, help="run every configuration this many times, one "
                        "after another, and report the best and the median (a drifting load hits all alike)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import torch

    from anybody.methods.learner import Learner

    pipe = load(args.model)
    rounds: dict[str, list[float]] = {}
    own_kernel = Learner.optimizer_kernel
    order = ["floor", *(name for name in SWITCHES if not args.only or name in args.only)]
    for round_ in range(args.rounds):
        for name in reversed(order) if args.reverse else order:
            started = time.perf_counter()
            if name == "floor":
                seconds = floor_on(pipe, args.resolution, args.steps, args.warmup, args.batch)
            else:
                overrides, kernel = SWITCHES[name]
                Learner.optimizer_kernel = (lambda self, kernel=kernel: kernel) if kernel else own_kernel
                seconds = learn_timed(pipe, args.resolution, args.steps, args.warmup, args.batch, **overrides)
                Learner.optimizer_kernel = own_kernel
                pipe.unet.to(memory_format=torch.contiguous_format)  # channels-last is not carried over
            rounds.setdefault(name, []).append(seconds)
            print(f"round {round_ + 1}, {name}: {seconds:.4f} s/step ({time.perf_counter() - started:.0f} s in all)",
                  flush=True)
    best = {name: min(times) for name, times in rounds.items()}
    median = {name: statistics.median(times) for name, times in rounds.items()}
    print(f"model {args.model}, {args.resolution} px, batch {args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up, {args.rounds} rounds, CPU, torch {torch.__version__}")
    for name in order:
        print(f"  {name:16} best {best[name]:8.4f} s/step  {best[name] / best['floor']:.3f} x floor   "
              f"median {median[name]:8.4f} s/step  {median[name] / median['floor']:.3f} x floor")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "resolution": args.resolution, "batch": args.batch,
                                         "steps": args.steps, "seconds_per_step": rounds}, indent=2) + "\n")

if __name__ == "__main__":
    main()
