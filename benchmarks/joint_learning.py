"""Time per identity when N people are learned jointly (one shared MLP), against N separate runs.

Everything is measured in one run on one loaded pipeline (so model loading, which a separate CLI run
would repeat, is left out: the comparison favours separate runs). Each learning run includes what
`anybody learn` does besides the steps: face detection, alignment and descriptors, the augmented views
and their VAE latents, the basis (cached on disk, warmed up first) and the identity files.

Two joint policies, both against N separate runs of S steps:
- "joint, S steps": the tool's default, one run of S steps for all N (each person gets S*batch/N samples);
- "joint, N*S steps": as many samples per person as separate runs (the pure cost of sharing one run).

The photos are the sample photo and seven edits of it (mirror images, crops, colour changes).

    python benchmarks/joint_learning.py                                     # tiny, 128 px
    python benchmarks/joint_learning.py --model sd15 --resolution 256 --steps 2 --views 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.training_step import load  # noqa: E402

PHOTO = ROOT / "anybody" / "data" / "sample_face.jpg"


def photos(folder: Path, count: int = 8) -> list[Path]:
    """The sample photo and edits of it: different pictures with one clear face each."""
    sample = Image.open(PHOTO).convert("RGB")
    width, height = sample.size
    edits = [
        lambda image: image,
        ImageOps.mirror,
        lambda image: image.crop((width // 10, height // 12, width, height)),
        lambda image: ImageEnhance.Color(image).enhance(0.3),
        lambda image: ImageOps.mirror(ImageEnhance.Brightness(image).enhance(1.2)),
        lambda image: image.crop((0, 0, width - width // 10, height - height // 12)),
        lambda image: ImageEnhance.Contrast(image).enhance(1.4),
        lambda image: ImageOps.mirror(image.crop((width // 20, 0, width, height - height // 20))),
    ]
    paths = []
    for index, edit in enumerate(edits[:count]):
        paths.append(folder / f"person{index}.png")
        edit(sample).save(paths[-1])
    return paths


def seconds(pipe, pictures: list[Path], names: list[str], config, library: Path) -> float:
    from anybody.learning import learn

    start = time.perf_counter()
    learn(pictures, names, pipe, config, library=library, replace=True, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="S: training steps of one separate run")
    parser.add_argument("--views", type=int, default=8, help="augmented views per photo")
    parser.add_argument("--counts", default="1,2,4,8")
    args = parser.parse_args()

    from anybody.learning import LearnConfig

    counts = [int(count) for count in args.counts.split(",")]
    pipe = load(args.model)
    config = LearnConfig(steps=args.steps, views=args.views, resolution=args.resolution, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        pictures = photos(folder, max(counts))
        names = [f"person{index}" for index in range(len(pictures))]
        seconds(pipe, pictures[:1], names[:1], LearnConfig(steps=1, views=2, resolution=args.resolution),
                folder / "warmup")  # builds and caches the basis, warms up the kernels
        print(f"model {args.model}, {args.resolution} px, batch 2, S = {args.steps} steps, {args.views} views, CPU")
        print(f"{'N':>3} {'separate s/id':>14} {'joint S s/id':>13} {'ratio':>6} {'joint N*S s/id':>15} {'ratio':>6}")
        for count in counts:
            separate = sum(seconds(pipe, [picture], [name], config, folder / "separate")
                           for picture, name in zip(pictures[:count], names[:count])) / count
            joint = seconds(pipe, pictures[:count], names[:count], config, folder / "joint") / count
            longer = LearnConfig(steps=args.steps * count, views=args.views, resolution=args.resolution,
                                 checkpoint_every=10**9)
            joint_long = seconds(pipe, pictures[:count], names[:count], longer, folder / "joint-long") / count
            print(f"{count:>3} {separate:>14.2f} {joint:>13.2f} {joint / separate:>6.3f} {joint_long:>15.2f} "
                  f"{joint_long / separate:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
