"""`anybody swap`: a learned person's face drawn into a photo, in place of a face there."""

from __future__ import annotations

import argparse

from anybody.generation import defaults
from anybody.interfaces.cli.options import add_device, add_library, add_model
from anybody.learning.config import LearnConfig


def add_parsers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("swap", help="draw a learned person's face in place of a face in a photo")
    parser.add_argument("photo", help="the photo whose face is replaced")
    parser.add_argument("--identity", required=True, help="the identity drawn in (a library name or a file)")
    parser.add_argument("--face", help="which face: 0 is the largest, 1 the next, ...; all = every face "
                        "(default: the largest)")
    parser.add_argument("--prompt", help="what to draw there, naming the identity "
                        f'(default "{defaults.SWAP_PROMPT.format("NAME")}")')
    parser.add_argument("--strength", type=float, default=defaults.SWAP_STRENGTH, help="how much of the face region is "
                        f"drawn anew, over 0 and at most 1 (default {defaults.SWAP_STRENGTH})")
    parser.add_argument("--negative", help="negative prompt: what the face should not show")
    add_model(parser, single_file=False, default="the model the identity was learned on")
    add_device(parser)
    parser.add_argument("--seed", type=int, default=defaults.SEED,
                        help=f"face k is drawn with seed + k (default {defaults.SEED})")
    parser.add_argument("--steps", type=int, default=defaults.STEPS,
                        help=f"denoising steps, of which --strength are run (default {defaults.STEPS})")
    parser.add_argument("--guidance", type=float, default=defaults.GUIDANCE,
                        help=f"classifier-free guidance scale (default {defaults.GUIDANCE})")
    parser.add_argument("--detector", choices=("hog", "cnn"), default=LearnConfig.detector,
                        help=f"dlib's face detector (default {LearnConfig.detector})")
    parser.add_argument("--out", help="the PNG to write (default anybody-output/PHOTO-NAME-<date-time>.png)")
    add_library(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Before torch and diffusers are imported: the face number, the identity and the prompt; then swap reads
    # the photo and finds its faces (dlib) before it loads anything else.
    from anybody.generation.checks import check_identities
    from anybody.generation.swap import default_out, describe_scores, parse_face_choice, swap
    from anybody.identity.contents import read_contents
    from anybody.identity.library import resolve_identity

    choice = parse_face_choice(args.face)
    name = read_contents(resolve_identity(args.identity, args.library)).name
    prompt = args.prompt or defaults.SWAP_PROMPT.format(name)
    model = check_identities(prompt, [args.identity], args.library, args.model)
    result = swap(args.photo, args.identity, model, face=choice, prompt=prompt, strength=args.strength,
                  negative_prompt=args.negative, num_inference_steps=args.steps, guidance_scale=args.guidance,
                  seed=args.seed, detector=args.detector, out=args.out or default_out(args.photo, name),
                  library=args.library, device=args.device, dtype=args.dtype)
    for line in describe_scores(result):
        print(line)
    print(result.path)
    return 0
