"""`anybody basis`: build or show the celeb basis of a model; `anybody basis filter`: keep the names the
model draws as one consistent face (writes a names file for `basis --names` and `learn --names`)."""

from __future__ import annotations

import argparse
import shlex

from anybody.basis import BasisOptions
from anybody.basis.filter import IMAGES, MIN_DETECTED, OUT, FilterSettings
from anybody.generation import defaults
from anybody.interfaces.cli.options import add_device, add_model


def add_parsers(commands: argparse._SubParsersAction) -> None:
    basis = commands.add_parser("basis", help="build or show the celeb basis of a model (basis filter: choose "
                                "its names)")
    add_model(basis)
    add_device(basis)
    basis.add_argument("--alignment", choices=("words", "positions"), default=BasisOptions.alignment,
                       help="name positions: word-aligned or the reference's first two tokens "
                       f"(default {BasisOptions.alignment})")
    basis.add_argument("--names", help="a names file, one per line (default: the shipped list)")
    basis.add_argument("--components", type=int, default=BasisOptions.max_components,
                       help=f"at most this many per position (default {BasisOptions.max_components})")
    basis.set_defaults(run=run)
    actions = basis.add_subparsers(dest="action", metavar="ACTION", required=False)
    add_filter_parser(actions)


def add_filter_parser(actions: argparse._SubParsersAction) -> None:
    names = actions.add_parser(
        "filter", help="keep the names the model draws as one consistent face",
        description="For each celebrity name, draw a few images of 'a photo of NAME' and keep the name when faces "
        "are found in most of them and agree with each other (under the recognizer's same-person distance). "
        "Writes a names file that `anybody basis --names` and `anybody learn --names` read, each name with its "
        "scores. Resumes: names already scored with the same settings are not drawn again.")
    add_model(names, single_file=False)
    add_device(names)
    names.add_argument("--names", help="the names to filter, one a line (default: the shipped list)")
    names.add_argument("--out", default=OUT, help=f"the names file to write; scores go beside it in "
                       f"OUT.scores.json (default {OUT})")
    names.add_argument("--images", type=int, default=IMAGES, help=f"images drawn per name (default {IMAGES})")
    names.add_argument("--steps", type=int, default=defaults.STEPS,
                       help=f"denoising steps per image (default {defaults.STEPS})")
    names.add_argument("--seed", type=int, default=defaults.SEED, help=f"image i uses seed + i (default "
                       f"{defaults.SEED})")
    names.add_argument("--min-detected", type=float, default=MIN_DETECTED,
                       help=f"keep a name only when this share of its images has a face (default {MIN_DETECTED})")
    names.add_argument("--same-person", type=float, help="the largest mean distance between a name's faces for "
                       "them to count as one person (default: the recognizer's own, 0.6 for dlib)")
    names.add_argument("--scorer", default=FilterSettings.scorer, help="the face recognizer: dlib, or the path to an "
                       f"ArcFace .onnx file (default {FilterSettings.scorer})")
    names.add_argument("--offset", type=int, default=0, help="start at this name of the list (default 0)")
    names.add_argument("--limit", type=int, help="filter at most this many names (default: all)")
    names.set_defaults(run=run_filter)


def run(args: argparse.Namespace) -> int:
    from anybody.basis.filter import names_file
    from anybody.models.catalog import locate_model

    options = BasisOptions(alignment=args.alignment, max_components=args.components,
                           names_file=names_file(args.names) if args.names else None)
    locate_model(args.model)  # a model that cannot be had is refused before torch is imported
    from anybody.basis import build_basis
    from anybody.models import load_pipeline, text_encoders

    pipe = load_pipeline(args.model, device=args.device or "cpu", dtype=args.dtype, config=args.config)
    for encoder_name, tokenizer, encoder in text_encoders(pipe):
        basis = build_basis(tokenizer, encoder.get_input_embeddings().weight, options=options)
        stats = basis.statistics
        print(f"{encoder_name}: width {basis.width}, {stats['names']} names, {stats['alignment']} alignment, "
              f"k = {basis.rank} components per position")
        for position in stats["positions"]:
            dropped = ", ".join(f"{count} {why}" for why, count in position["dropped"].items()) or "none"
            print(f"  {position['position']}: {position['names_used']} names used (rank {position['rank']}, "
                  f"explained variance {position['explained_variance']:.1%}); dropped: {dropped}")
        print(f"  hash {basis.key[:16]}, cached at {basis.cache_path}")
    return 0


def run_filter(args: argparse.Namespace) -> int:
    from anybody import settings
    from anybody.basis.filter import filter_names, names_file
    from anybody.models.catalog import locate_model

    chosen = FilterSettings(
        model=args.model or settings.default_model(), names=names_file(args.names) if args.names else None,
        images=args.images, steps=args.steps, seed=args.seed, min_detected=args.min_detected,
        same_person=args.same_person, scorer=args.scorer, offset=args.offset, limit=args.limit, out=args.out,
        device=args.device, dtype=args.dtype)
    chosen.check()  # the numbers first: a refusal that needs no model
    locate_model(chosen.model)  # a model that cannot be had is refused before torch is imported
    from anybody.basis import load_names
    from anybody.basis.builder import MIN_NAMES  # torch: only once the model is known to be here

    scores = filter_names(chosen)
    kept = len(load_names(chosen.out))
    print(f"Scored {len(scores)} names in this slice; {kept} kept so far in {chosen.out} "
          f"(scores in {chosen.out}.scores.json).")
    if kept < MIN_NAMES:  # a basis of them would be refused
        print(f"A basis needs at least {MIN_NAMES} names: filter more of the list (--offset, --limit), or with a "
              "model that draws faces.")
        return 0
    same = f" --model {shlex.quote(args.model)}" if args.model else ""  # the names are this model's
    names = shlex.quote(str(chosen.out))
    print(f"Next: anybody basis --names {names}{same}  (or anybody learn PHOTO --name NAME --names {names}{same})")
    return 0
