"""`anybody mix`: a new person between learned ones (`anybody.identity.mix`)."""

from __future__ import annotations

import argparse

from anybody.interfaces.cli.options import add_library, add_model


def add_parsers(commands: argparse._SubParsersAction) -> None:
    mix = commands.add_parser("mix", help="a new person mixed from learned ones",
                              description="Mix learned identities into a new one: Celeb Basis identities of one "
                              "model in their celeb basis, others by their token rows (with a warning).")
    mix.add_argument("identities", nargs="+", metavar="IDENTITY", help="library names or identity files, two or more")
    mix.add_argument("--weights", help="comma-separated, one per identity, 0 or more; normalised to sum 1 "
                     "(default: equal)")
    mix.add_argument("--name", required=True, help="the new identity's name")
    add_model(mix, single_file=False, default="the model the identities were learned on; only needed when the "
              "basis cache does not hold their basis")
    mix.add_argument("--replace", action="store_true", help="replace an identity of the same name")
    add_library(mix)
    mix.set_defaults(run=run)


def parse_weights(text: str | None, count: int) -> list[float]:
    """The --weights list: one number per identity (equal weights when not given)."""
    from anybody.errors import UsageError

    if text is None:
        return [1.0] * count
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"The weights must be numbers separated by commas (got {text!r})",
                         "Pass --weights 0.7,0.3, for example") from None
    if len(weights) != count:
        raise UsageError(f"--weights has {len(weights)} value{'s' * (len(weights) != 1)} for {count} identities",
                         "Give one weight per identity, in the same order")
    return weights


def run(args: argparse.Namespace) -> int:
    from anybody.identity.mix import mix  # imports no model library until mixing starts
    from anybody.identity.names import check_distinct
    from anybody.interfaces.cli.generate import next_command

    check_distinct(args.identities)  # as given: the weights are keyed by them
    weights = dict(zip(args.identities, parse_weights(args.weights, len(args.identities))))
    mixed = mix(weights, args.name, library=args.library, model=args.model, replace=args.replace)
    shares = " + ".join(f"{share:g} {parent}" for parent, share in mixed.metadata["mixed_from"].items())
    print(f"Mixed {mixed.name} = {shares}: {mixed.path}")
    print(next_command([(mixed.name, mixed.metadata, mixed.widths)], args.library, args.model))
    return 0
