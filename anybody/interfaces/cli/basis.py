"""`anybody basis`: build or show the celeb basis of a model."""

from __future__ import annotations

import argparse

from anybody.basis import BasisOptions
from anybody.interfaces.cli.options import add_device, add_model


def add_parsers(commands: argparse._SubParsersAction) -> None:
    basis = commands.add_parser("basis", help="build or show the celeb basis of a model")
    add_model(basis)
    add_device(basis)
    basis.add_argument("--alignment", choices=("words", "positions"), default=BasisOptions.alignment,
                       help="name positions: word-aligned or the reference's first two tokens "
                       f"(default {BasisOptions.alignment})")
    basis.add_argument("--names", help="a names file, one per line (default: the shipped list)")
    basis.add_argument("--components", type=int, default=BasisOptions.max_components,
                       help=f"at most this many per position (default {BasisOptions.max_components})")
    basis.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from anybody.basis import build_basis, load_names
    from anybody.models import load_pipeline, text_encoders

    pipe = load_pipeline(args.model, device=args.device or "cpu", dtype=args.dtype, config=args.config)
    names = load_names(args.names) if args.names else None
    options = BasisOptions(alignment=args.alignment, max_components=args.components)
    for encoder_name, tokenizer, encoder in text_encoders(pipe):
        basis = build_basis(tokenizer, encoder.get_input_embeddings().weight, names, options)
        stats = basis.statistics
        print(f"{encoder_name}: width {basis.width}, {stats['names']} names, {stats['alignment']} alignment, "
              f"k = {basis.rank} components per position")
        for position in stats["positions"]:
            dropped = ", ".join(f"{count} {why}" for why, count in position["dropped"].items()) or "none"
            print(f"  {position['position']}: {position['names_used']} names used (rank {position['rank']}, "
                  f"explained variance {position['explained_variance']:.1%}); dropped: {dropped}")
        print(f"  hash {basis.key[:16]}, cached at {basis.cache_path}")
    return 0
