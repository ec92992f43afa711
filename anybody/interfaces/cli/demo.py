"""`anybody demo`: the whole path (photo → identity → pictures) on the built-in default."""

from __future__ import annotations

import argparse
from pathlib import Path

from anybody import settings

SAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "data" / "sample_face.jpg"
DEMO_NAME = "eileen"  # the sample photo is astronaut Eileen Collins (NASA, public domain)
OUT = "anybody-output/demo"
TINY_STEPS, TINY_VIEWS, TINY_DRAWING_STEPS = 150, 16, 25  # enough to prove the path, quickly


def add_parsers(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the whole path on the built-in tiny model and the sample photo")
    demo.add_argument("--out", default=OUT, help=f"folder for the identity and the pictures (default {OUT})")
    demo.add_argument("--model", default="tiny", help="default tiny (random weights); name a real model here")
    demo.add_argument("--steps", type=int, help=f"training steps (default {TINY_STEPS} on tiny, the method's "
                      "own otherwise)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from anybody.models.catalog import locate_model

    locate_model(args.model)  # a model that cannot be had is refused before torch is imported
    from anybody.generation import defaults, generate
    from anybody.learning import LearnConfig, learn
    from anybody.models import load_pipeline

    out = Path(args.out)
    tiny = args.model == "tiny"
    if tiny:
        print("The demo runs on the built-in `tiny` model: a small Stable Diffusion with RANDOM weights, so its "
              "pictures are noise. It proves the whole path runs. For real pictures add one flag:\n"
              f"    anybody demo --model {settings.DEFAULT_MODEL}\n")
    config = LearnConfig(**({"steps": TINY_STEPS, "views": TINY_VIEWS} if tiny else {}))
    if args.steps:
        config.steps = args.steps
    pipe = load_pipeline(args.model)
    identity = learn(SAMPLE_PHOTO, DEMO_NAME, pipe, config, library=out, replace=True, restart=True)[0]
    print(f"Identity file: {identity.path}")
    prompt = f"a photo of {DEMO_NAME} as an astronaut on the moon"
    result = generate(prompt, identity, pipe, num_inference_steps=TINY_DRAWING_STEPS if tiny else defaults.STEPS,
                      out_dir=out)
    for path in result.paths:
        print(f"Image: {path}")
    print(f"Contact sheet: {result.sheet}")
    return 0
