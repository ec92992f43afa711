"""`anybody generate` and `anybody attention`: draw learned people, or where each word attends."""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from anybody import settings
from anybody.attention.regions import parse_region_options
from anybody.generation import defaults
from anybody.generation.checks import check_arguments, check_identities
from anybody.interfaces.cli.options import add_device, add_library, add_model, split_names
from anybody.models.catalog import locate_model

if TYPE_CHECKING:
    from anybody.identity.families import Facts


def _add_drawing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help='what to draw, naming the identities as words: "a photo of alice reading"')
    parser.add_argument("--identity", default="", help="identity names or files, comma-separated")
    add_model(parser, single_file=False, default="the model the identity was learned on; for one that does not "
              "say (an imported embedding): ANYBODY_MODEL, else its family's model (SD 1.x "
              f"{settings.FAMILY_MODELS['sd1']}, SD 2.x {settings.FAMILY_MODELS['sd2']}, SDXL "
              f"{settings.FAMILY_MODELS['sdxl']})")
    add_device(parser)
    parser.add_argument("--seed", type=int, default=defaults.SEED,
                        help=f"image i uses seed + i, so any one can be drawn again (default {defaults.SEED})")
    parser.add_argument("--steps", type=int, default=defaults.STEPS,
                        help=f"denoising steps (default {defaults.STEPS})")
    parser.add_argument("--guidance", type=float, default=defaults.GUIDANCE,
                        help=f"classifier-free guidance scale (default {defaults.GUIDANCE})")
    parser.add_argument("--region", action="append", default=[], metavar="NAME=WHERE",
                        help="where an identity is drawn: left, right, top, bottom, center or x0,y0,x1,y1 (fractions "
                        "of the picture); its words then act only there, with a soft edge. One per identity, e.g. "
                        "--region alice=left --region bob=right")
    add_library(parser)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """Drawing into a given picture (inpainting, img2img) or in a given pose (ControlNet): docs/control.md."""
    into = parser.add_argument_group("into a picture (inpainting, img2img)")
    into.add_argument("--image", help="the picture to draw into: with --mask only the white of the mask is redrawn "
                      "(inpainting), without it the whole picture is redrawn in part (img2img)")
    into.add_argument("--mask", help="black and white image of the picture's shape: white = redraw, black = keep "
                      "(every black pixel stays the picture's own)")
    into.add_argument("--strength", type=float, help="how much is drawn anew, over 0 and at most 1 (default "
                      f"{defaults.INPAINT_STRENGTH} with --mask, {defaults.IMG2IMG_STRENGTH} without)")
    pose = parser.add_argument_group("in a pose or layout (ControlNet)")
    given = pose.add_mutually_exclusive_group()
    given.add_argument("--control", help="the control image the ControlNet reads (an edge map, a pose, a depth map)")
    given.add_argument("--control-from", metavar="PHOTO", help="make the control image from this photo "
                       "(see --control-kind); it is saved as control.png beside the pictures")
    pose.add_argument("--control-kind", choices=defaults.CONTROL_KINDS, default=defaults.CONTROL_KINDS[0],
                      help="what --control-from makes: canny = the photo's edges (default)")
    pose.add_argument("--controlnet", help="the ControlNet: a Hub id (lllyasviel/sd-controlnet-canny), a diffusers "
                      "folder, a .safetensors file, or tiny (random weights, for the tiny models)")
    pose.add_argument("--control-scale", type=float, default=defaults.CONTROL_SCALE,
                      help=f"how strongly the ControlNet steers (default {defaults.CONTROL_SCALE})")


def _input_arguments(args: argparse.Namespace) -> dict[str, object]:
    """The --image/--mask/--control options as `generate`'s (and `read_inputs`') keyword arguments."""
    return {"image": args.image, "mask": args.mask, "strength": args.strength,
            "control_image": args.control or args.control_from,
            "control_kind": args.control_kind if args.control_from else None,
            "controlnet": args.controlnet, "control_scale": args.control_scale}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser("generate", help="draw learned people from a prompt")
    _add_drawing(generate)
    generate.add_argument("-n", "--num-images", type=int, default=defaults.NUM_IMAGES,
                          help=f"how many images (default {defaults.NUM_IMAGES})")
    generate.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE,
                          help=f"images drawn at once (default {defaults.BATCH_SIZE}); more are drawn in turn, "
                          "with the same result")
    generate.add_argument("--height", type=int, help="in px, a multiple of 8 (default: the model's own size)")
    generate.add_argument("--width", type=int, help="in px, a multiple of 8 (default: the model's own size)")
    generate.add_argument("--negative", help="negative prompt: what the pictures should not show")
    generate.add_argument("--scheduler", choices=("ddim", "model"), default=defaults.SCHEDULER,
                          help=f"DDIM or the model's own scheduler (default {defaults.SCHEDULER})")
    generate.add_argument("--out", help="output folder (default anybody-output/<date-time>)")
    _add_inputs(generate)
    generate.set_defaults(run=run_generate)

    attention = commands.add_parser("attention", help="draw where each word of a prompt attends (one picture)")
    _add_drawing(attention)
    attention.add_argument("--level", type=int, default=defaults.ATTENTION_LEVEL,
                           help="cross-attention level: 0 the finest, 1 SeFi-IDE's 32x32 at 512 px "
                           f"(default {defaults.ATTENTION_LEVEL})")
    attention.add_argument("--out", default=defaults.ATTENTION_OUT,
                           help=f"the picture to write (default {defaults.ATTENTION_OUT})")
    attention.set_defaults(run=run_attention)


def run_generate(args: argparse.Namespace) -> int:
    # Before torch and diffusers are imported: a refusal is immediate.
    check_arguments(args.prompt, args.num_images, args.steps, args.guidance, args.height, args.width, args.negative,
                    args.batch_size)
    from anybody.generation.inputs import read_inputs  # numpy and PIL: only for a drawing, not at start-up

    read_inputs(**_input_arguments(args), steps=args.steps)
    regions = parse_region_options(args.region)
    model = check_identities(args.prompt, split_names(args.identity), args.library, args.model, regions)
    locate_model(model)  # a model that cannot be had is refused before torch is imported
    from anybody.generation import generate

    out = args.out or f"anybody-output/{time.strftime('%Y%m%d-%H%M%S')}"
    result = generate(
        args.prompt, split_names(args.identity), model, **_input_arguments(args), regions=regions,
        num_images_per_prompt=args.num_images,
        num_inference_steps=args.steps, guidance_scale=args.guidance, seed=args.seed, negative_prompt=args.negative,
        height=args.height, width=args.width, scheduler=args.scheduler, out_dir=out, library=args.library,
        device=args.device, dtype=args.dtype, batch_size=args.batch_size,
    )
    for path in result.paths:
        print(path)
    print(f"Contact sheet: {result.sheet}")
    return 0


def run_attention(args: argparse.Namespace) -> int:
    check_arguments(args.prompt, 1, args.steps, args.guidance, None, None)
    regions = parse_region_options(args.region)
    model = check_identities(args.prompt, split_names(args.identity), args.library, args.model, regions)
    locate_model(model)  # a model that cannot be had is refused before torch is imported
    from anybody.generation import attention_map

    path = attention_map(args.prompt, split_names(args.identity), model, out=args.out, seed=args.seed,
                         num_inference_steps=args.steps, guidance_scale=args.guidance, level=args.level,
                         regions=regions, library=args.library, device=args.device, dtype=args.dtype)
    print(path)
    return 0


def next_command(identities: Sequence[Facts], library: str | None, model: str | None = None) -> str:
    """The "Next:" line after identities are made (learned, mixed, imported): the generate command that draws
    them. It names a model only where they name none and generate would find none (`families.drawing_model`):
    `model` (the one the command was given), else MODEL and what it must be."""
    from anybody.errors import UsageError
    from anybody.identity.families import drawing_model

    names = [name for name, _, _ in identities]
    line = f'Next: anybody generate "a photo of {" and ".join(names)}" --identity {",".join(names)}'
    if library:
        line += f" --library {shlex.quote(str(library))}"
    try:
        drawing_model(identities, say=False)
    except UsageError:
        widths = " and ".join(str(width) for width in identities[0][2])
        line += f" --model {shlex.quote(model)}" if model else \
            f" --model MODEL  (MODEL: one whose text encoder is {widths} wide; {names[0]} names none)"
    return line
