"""Learning and drawing on each full-size family (random weights): proof that nothing assumes a size.

For SD 1.5, SD 2.1 and SDXL at their real sizes (text encoders 768, 1024, 768 + 1280; basis k = 512 per
encoder; UNets of 0.86, 0.87 and 2.6 B parameters), one process per family: `learn` with Celeb Basis
(the median seconds of the timed steps), then one picture (seconds, text encoding and VAE decoding
included), and the process's peak memory.

    python benchmarks/families.py                                   # all three at 256 px, 3 learning steps
    python benchmarks/families.py --family sdxl --resolution 512 --steps 4
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.training_step import load  # noqa: E402

PHOTO = ROOT / "anybody" / "data" / "sample_face.jpg"
FAMILIES = ("sd15", "sd2", "sdxl")


def measure(family: str, resolution: int, steps: int, image_steps: int) -> None:
    from anybody.generation import generate
    from anybody.learning import LearnConfig, learn
    from anybody.models import model_family, text_encoders

    pipe = load(family)
    widths = "+".join(str(e.get_input_embeddings().weight.shape[1]) for _, _, e in text_encoders(pipe))
    stamps: list[float] = []
    config = LearnConfig(steps=steps + 1, views=2, resolution=resolution, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as library:
        identity = learn(PHOTO, "bench", pipe, config, library=library, progress=False,
                         callback=lambda step, loss: stamps.append(time.perf_counter()))[0]
        step = statistics.median(later - earlier for earlier, later in itertools.pairwise(stamps))
        start = time.perf_counter()
        generate("a photo of bench on a beach", identity, pipe, num_images_per_prompt=1,
                 num_inference_steps=image_steps, height=resolution, width=resolution)
        image = time.perf_counter() - start
    ranks = "+".join(str(v.shape[-1]) for v in identity.encoder_coefficients.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{family:5s} {model_family(pipe):5s} widths {widths:9s} k {ranks:8s} learn {step:7.2f} s/step  "
          f"draw {image:6.1f} s/image of {image_steps} steps  peak {peak:5.1f} GB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=FAMILIES)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed learning steps (batch 2)")
    parser.add_argument("--image-steps", type=int, default=2)
    args = parser.parse_args()
    if args.family:
        measure(args.family, args.resolution, args.steps, args.image_steps)
        return
    print(f"{args.resolution} px, batch 2, fp32, CPU; one process per family")
    for family in FAMILIES:  # a fresh process each: the peak memory is that family's own
        subprocess.run([sys.executable, __file__, "--family", family, "--resolution", str(args.resolution),
                        "--steps", str(args.steps), "--image-steps", str(args.image_steps)], check=True)


if __name__ == "__main__":
    main()
