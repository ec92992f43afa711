"""How the cost of a learning step grows: time per step and peak memory against the batch size, the
resolution and the number of identities learned jointly, written as JSON and drawn as a plot.

Each configuration runs `anybody.learn` (Celeb Basis) in its own process, so its peak memory is its own
(the process's peak resident set on the CPU, what torch allocated on a GPU); "model" is the resident
memory once the model is loaded, before learning, so peak − model is what learning itself adds. Every
axis varies one thing from the same base (batch 2, the smallest resolution, one identity); ratios are
within one run of this script. The JSON is written after each configuration, and a rerun with the same
settings measures only what is missing.

    python benchmarks/growth.py --model sd15                       # full-size SD 1.5, random weights
    python benchmarks/growth.py --model tiny --resolutions 64 96 128 --steps 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.joint_learning import photos  # noqa: E402
from benchmarks.training_step import learn_timed, load, peak_memory_mb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model: str, device: str, dtype: str | None, resolution: int, batch: int, identities: int, steps: int,
          warmup: int) -> dict:
    pipe = load(model, device, dtype)
    loaded = resident_mb() if pipe.unet.device.type == "cpu" else peak_memory_mb(pipe.unet.device)
    with tempfile.TemporaryDirectory() as folder:
        pictures = photos(Path(folder), identities)
        seconds = learn_timed(pipe, resolution, steps, warmup, batch, pictures,
                              [f"person{index}" for index in range(identities)])
    return {"seconds_per_step": seconds, "peak_mb": peak_memory_mb(pipe.unet.device), "model_mb": loaded}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = {"batch": "batch size", "resolution": "resolution (px)", "identities": "identities learned jointly"}
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    for axis, (key, label) in zip(axes, axes_names.items()):
        rows = sorted((row for row in results["runs"] if key in row["varies"]), key=lambda row: row[key])
        x = [row[key] for row in rows]
        axis.plot(x, [row["seconds_per_step"] for row in rows], "o-", color="tab:blue")
        axis.set_xlabel(label)
        axis.set_xticks(x)
        axis.set_ylabel("seconds per step", color="tab:blue")
        axis.set_ylim(bottom=0)
        memory = axis.twinx()
        memory.plot(x, [row["peak_mb"] / 1024 for row in rows], "s--", color="tab:red", label="peak")
        memory.plot(x, [(row["peak_mb"] - row["model_mb"]) / 1024 for row in rows], "^:", color="tab:orange",
                    label="peak − model")
        memory.set_ylabel("memory (GiB)", color="tab:red")
        memory.set_ylim(bottom=0)
        if key == "batch":
            memory.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"anybody learn, {results['title']}", fontsize=10)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sd15", help="sd15 (full size, random weights), tiny, or any model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", help="default: the device's (fp32 on the CPU)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 384, 512])
    parser.add_argument("--identities", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "growth", help="writes OUT.json and OUT.png")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        resolution, batch, identities = map(int, args.child.split(","))
        print(json.dumps(child(args.model, args.device, args.dtype, resolution, batch, identities, args.steps,
                               args.warmup)))
        return

    base = {"resolution": min(args.resolutions), "batch": 2 if 2 in args.batches else args.batches[0], "identities": 1}
    wanted: dict[tuple[int, int, int], set[str]] = {}
    for key, values in (("batch", args.batches), ("resolution", args.resolutions), ("identities", args.identities)):
        for value in values:
            setting = {**base, key: value}
            wanted.setdefault((setting["resolution"], setting["batch"], setting["identities"]), set()).add(key)
    title = (f"{args.model} on {args.device} ({args.dtype or 'default dtype'}), {args.steps} timed steps after "
             f"{args.warmup} warm-up")
    results = {"title": title, "base": base, "runs": []}
    saved = args.out.with_suffix(".json")
    if saved.is_file() and json.loads(saved.read_text()).get("title") == title:  # a rerun keeps what was measured
        results["runs"] = json.loads(saved.read_text())["runs"]
    done = {(run["resolution"], run["batch"], run["identities"]) for run in results["runs"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for (resolution, batch, identities), varies in wanted.items():
        if (resolution, batch, identities) in done:
            continue
        command = [sys.executable, __file__, "--model", args.model, "--device", args.device, "--steps",
                   str(args.steps), "--warmup", str(args.warmup), "--child", f"{resolution},{batch},{identities}"]
        if args.dtype:
            command += ["--dtype", args.dtype]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        run = {"resolution": resolution, "batch": batch, "identities": identities, "varies": sorted(varies),
               **json.loads(output.strip().splitlines()[-1])}
        results["runs"].append(run)
        saved.write_text(json.dumps(results, indent=2) + "\n")  # after each, so a rerun goes on from here
        print(f"{resolution} px, batch {batch}, {identities} identities: {run['seconds_per_step']:.3f} s/step, "
              f"peak {run['peak_mb']:.0f} MiB (model {run['model_mb']:.0f} MiB)", flush=True)
    plot(results, args.out.with_suffix(".png"))
    print(f"Wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
