"""Learning on a busy machine: time per step on tiny alone and beside CPU-burning processes, per thread setting.

A learning step on tiny is hundreds of small operators, each split across torch's intra-op threads (one per
core by default), with OpenMP threads that spin while they wait for work. When other processes hold the
cores, every operator waits at its barrier for a thread that is not running, so the step slows far more
than the share of CPU it lost. This script measures that: `anybody.learn` on tiny (the loop of
benchmarks/training_step.py, timed step by step) in its own process, for each thread setting, first with the
machine as it is, then beside one busy process per core.

    python benchmarks/contention.py [--steps N]

Settings: torch's default (one thread per core, OpenMP's default wait policy); OMP_WAIT_POLICY=PASSIVE
(waiting threads sleep instead of spinning); one thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "torch default": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "ANYBODY_THREADS")
BURN = "while True: pass"


def child(steps: int) -> None:
    import torch

    from benchmarks.training_step import loop

    result = loop("tiny", 128, steps, 2, 2)
    print(json.dumps({**result, "threads": torch.get_num_threads()}))


def measure(steps: int, environment: dict[str, str]) -> dict:
    """One learning run in a fresh process with exactly these thread variables."""
    base = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    command = [sys.executable, __file__, "--child", "--steps", str(steps)]
    done = subprocess.run(command, env={**base, **environment}, check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the learning run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run, after 2 warm-up (default 10)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.steps)
        return
    cores = os.cpu_count() or 1
    print(f"tiny, 128 px, batch 2, {args.steps} timed steps; {cores} cores, load {os.getloadavg()[0]:.1f} at start")
    print("| setting | threads | s/step, machine as it is | s/step, beside busy processes | slowdown |")
    print("|---|---|---|---|---|")
    for label, environment in SETTINGS.items():
        quiet = measure(args.steps, environment)
        burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(cores)]
        try:
            time.sleep(1)
            busy = measure(args.steps, environment)
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()
        print(f"| {label} | {quiet['threads']} | {quiet['seconds_per_step']:.3f} | {busy['seconds_per_step']:.3f} | "
              f"{busy['seconds_per_step'] / quiet['seconds_per_step']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
