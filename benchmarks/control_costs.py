"""What drawing into a picture or a pose through anybody costs over diffusers' own pipeline, as ratios
measured in one run.

For inpainting (a mask over a small box of a 3:2 picture: only the box is drawn), img2img (strength 0.75),
ControlNet (a random ControlNet of the UNet's own layout) and per-person regions (the identity kept in the
left half, at every cross-attention layer), `anybody.generate` with an identity
(two tokens per encoder, as Celeb Basis and Textual Inversion leave them) and its path/file inputs is
timed against the same diffusers pipeline (`AutoPipelineFor*.from_pipe` of the same components, made once)
called directly with the same pictures, size, seeds and steps and a prompt without an identity. What
anybody adds is reading and hashing the files, installing the identity, making the pipeline with
`from_pipe` on every call, and its checks. The two alternate, `--rounds` times; the best of each is
compared (the least disturbed by other work), and the median is printed too. Times are the CPU seconds of
this process (one thread: run with OMP_NUM_THREADS=1): on a machine shared with other work, wall-clock
times of a second or less vary twofold between rounds, CPU time far less, but still by ±10% on the tiny
models. So the time anybody spends outside the pipeline's own call is also measured inside each of its runs
(the pipeline class's `__call__` timed): that share is free of the noise between runs, and 1 + it is the
ratio a quiet machine would show. What regions cost is inside the pipeline's call (the attention logits'
bias), so for them the same `generate` without regions runs in the same rounds too, and their ratio to it
is printed.

    python benchmarks/control_costs.py                                      # the three tiny models, 128 px
    python benchmarks/control_costs.py --model sd15 --resolution 256 --steps 4 --rounds 3
    python benchmarks/control_costs.py --model sd15 --resolution 256 --steps 4 --rounds 3 --paths regions
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.training_step import load  # noqa: E402

IDENTITY = "bench"
PROMPT_WITH_IDENTITY = f"a photo of {IDENTITY} sitting in a garden"
PROMPT_WITHOUT = "a photo of a man sitting in a garden"


def scene(folder: Path, resolution: int) -> dict[str, Path]:
    """A 3:2 picture 1.5 resolutions wide, a mask over a box a quarter of its height, a control image."""
    import numpy as np
    from PIL import Image

    width, height = resolution * 3 // 2, resolution
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
    mask = Image.new("L", picture.size, 0)
    mask.paste(255, (width // 2, height // 3, width // 2 + height // 4, height // 3 + height // 4))
    paths = {"image": folder / "picture.png", "mask": folder / "mask.png", "control": folder / "control.png"}
    picture.save(paths["image"])
    mask.save(paths["mask"])
    picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(paths["control"])
    return paths


def identity(pipe):
    import torch

    from anybody.identity import Identity
    from anybody.models import text_encoders

    generator = torch.Generator().manual_seed(0)
    rows = {name: 0.1 * torch.randn(2, encoder.get_input_embeddings().weight.shape[1], generator=generator)
            for name, _, encoder in text_encoders(pipe)}
    return Identity(IDENTITY, rows, metadata={"method": "celeb-basis"})


def paths_to_time(pipe, files: dict[str, Path], controlnet, resolution: int) -> dict[str, tuple[object, dict, dict]]:
    """For each path: (the diffusers pipeline, its call's arguments, generate's arguments)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image
    from PIL import Image

    from anybody.generation import defaults

    picture, mask, control = (Image.open(files[key]).convert("RGB") for key in ("image", "mask", "control"))
    size = {"height": resolution, "width": resolution}
    img2img_size = (resolution * 3 // 2 // 8 * 8, resolution)  # what generate draws a 3:2 picture at
    paths = {
        "inpainting": (AutoPipelineForInpainting.from_pipe(pipe),
                       {"image": picture, "mask_image": mask.convert("L"), "strength": defaults.INPAINT_STRENGTH,
                        "padding_mask_crop": defaults.MASK_PADDING, **size},
                       {"image": files["image"], "mask": files["mask"], **size}),
        "img2img": (AutoPipelineForImage2Image.from_pipe(pipe),
                    {"image": picture.resize(img2img_size, Image.Resampling.LANCZOS),
                     "strength": defaults.IMG2IMG_STRENGTH},
                    {"image": files["image"], "height": img2img_size[1], "width": img2img_size[0]}),
        "ControlNet": (AutoPipelineForText2Image.from_pipe(pipe, controlnet=controlnet),
                       {"image": control, "controlnet_conditioning_scale": defaults.CONTROL_SCALE, **size},
                       {"control_image": files["control"], "controlnet": controlnet, **size}),
        "regions": (pipe, size, {"regions": {IDENTITY: "left"}, **size}),
    }
    for drawer, _, _ in paths.values():
        drawer.set_progress_bar_config(disable=True)
    return paths


def seconds(run) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


class TimedCalls:
    """Times every call of a pipeline class while installed: how much of `generate` is the pipeline's own."""

    def __init__(self, pipeline_class: type) -> None:
        self.pipeline_class, self.original, self.total = pipeline_class, pipeline_class.__call__, 0.0

    def __enter__(self) -> TimedCalls:
        original = self.original

        def timed(pipeline, *args, **kwargs):
            start = time.process_time()
            try:
                return original(pipeline, *args, **kwargs)
            finally:
                self.total += time.process_time() - start

        self.pipeline_class.__call__ = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.pipeline_class.__call__ = self.original


def unet_with_regions(pipe, draw, regions: dict[str, str], calls: int) -> tuple[int, float, float]:
    """What the regions cost where they act: one UNet forward of the drawing (its own arguments, caught from a
    drawing without regions) timed with anybody's region processors installed and with the pipeline's own,
    alternately, `calls` times each. Calls of a few milliseconds to seconds, repeated back to back, are far
    less disturbed by other work than whole drawings; the rest of a drawing is the same with and without."""
    import torch

    from anybody.attention import AttentionStore, RegionMasks, install, parse_region
    from anybody.identity import rewrite_prompt, token_strings

    caught: list[tuple[tuple, dict]] = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args, kwargs: caught.append((args, kwargs)) and None,
                                               with_kwargs=True)
    try:
        draw(given={})
    finally:
        hook.remove()
    args, kwargs = caught[0]
    prompt = rewrite_prompt(PROMPT_WITH_IDENTITY, [IDENTITY])
    masks = RegionMasks.for_prompt(pipe, prompt, {tuple(token_strings(IDENTITY, 2)): parse_region(where)
                                                  for where in regions.values()}, 7.5)
    times: dict[str, list[float]] = {"without": [], "with": []}
    with torch.no_grad():
        for _ in range(calls):
            times["without"].append(seconds(lambda: pipe.unet(*args, **kwargs)))
            with install(pipe.unet, AttentionStore(regions=masks)):
                times["with"].append(seconds(lambda: pipe.unet(*args, **kwargs)))
    return (calls, min(times["with"]) / min(times["without"]),
            statistics.median(times["with"]) / statistics.median(times["without"]))


def measure(model: str, resolution: int, steps: int, rounds: int, only: list[str] | None = None) -> None:
    import torch
    from diffusers import DDIMScheduler

    from anybody.generation import generate
    from anybody.models.tiny import build_tiny_controlnet

    pipe = load(model)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)  # what generate draws with, for both
    person = identity(pipe)
    controlnet = build_tiny_controlnet(pipe)
    with tempfile.TemporaryDirectory() as folder:
        files = scene(Path(folder), resolution)
        paths = paths_to_time(pipe, files, controlnet, resolution)
        print(f"model {model}, {resolution} px, {steps} steps, guidance 7.5, 1 image, CPU seconds, best (median) "
              f"of {rounds} alternating rounds")
        for label, (drawer, call, given) in paths.items():
            if only and label not in only:
                continue

            def plain(drawer=drawer, call=call) -> None:
                drawer(PROMPT_WITHOUT, num_inference_steps=steps, guidance_scale=7.5,
                       generator=[torch.Generator().manual_seed(0)], **call)

            def anybody(given=given) -> None:
                generate(PROMPT_WITH_IDENTITY, person, pipe, num_images_per_prompt=1, num_inference_steps=steps,
                         seed=0, progress=False, **given)

            runs = {"diffusers": plain, "anybody": anybody}
            if "regions" in given:  # and the same drawing without them: what the regions themselves cost
                runs["without regions"] = partial(anybody, given={k: v for k, v in given.items() if k != "regions"})
            for run in runs.values():  # warm-up: first calls allocate
                run()
            times: dict[str, list[float]] = {name: [] for name in runs}
            own = []  # per anybody run: its time outside the pipeline's call, over the time inside
            for round_ in range(rounds):
                order = list(runs.items())
                for name, run in order if round_ % 2 == 0 else reversed(order):
                    with TimedCalls(type(drawer)) as inside:
                        times[name].append(seconds(run))
                    if name == "anybody":
                        own.append((times[name][-1] - inside.total) / inside.total)
            best = {name: min(values) for name, values in times.items()}
            median = {name: statistics.median(values) for name, values in times.items()}
            ratio = best["anybody"] / best["diffusers"]
            print(f"  {label:11s} diffusers {best['diffusers']:7.3f} s ({median['diffusers']:.3f})   anybody "
                  f"{best['anybody']:7.3f} s ({median['anybody']:.3f})   ratio {ratio:.3f} "
                  f"({median['anybody'] / median['diffusers']:.3f})   anybody's own share "
                  f"+{100 * statistics.median(own):.2f}%")
            if "without regions" in times:
                print(f"  {'':11s} regions over the same generate without them: "
                      f"{best['anybody'] / best['without regions']:.3f} "
                      f"({median['anybody'] / median['without regions']:.3f});   the UNet's forward with them over "
                      "without, best (median) of {} interleaved calls: {:.3f} ({:.3f})".format(
                          *unet_with_regions(pipe, anybody, given["regions"], max(rounds, 10))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["tiny", "tiny-sd2", "tiny-sdxl"],
                        help="tiny, tiny-sd2, tiny-sdxl, or sd15/sd2/sdxl (full size, random weights)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paths", nargs="+", choices=("inpainting", "img2img", "ControlNet", "regions"),
                        help="only these paths (default: all)")
    args = parser.parse_args()
    for model in args.model:
        measure(model, args.resolution, args.steps, args.rounds, args.paths)


if __name__ == "__main__":
    main()
