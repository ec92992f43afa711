"""`anybody learn`: its options are built from `LearnConfig`'s fields, and their help names each default
from the config and the methods' paper defaults, so a changed default changes in one place."""

from __future__ import annotations

import argparse
import typing
from dataclasses import dataclass

from anybody.basis import BasisOptions
from anybody.interfaces.cli.generate import next_command
from anybody.interfaces.cli.options import add_device, add_library, add_model
from anybody.learning.config import LearnConfig
from anybody.methods import DEFAULT_METHOD, METHODS


@dataclass(frozen=True)
class Option:
    flag: str
    field: str  # the LearnConfig field it sets
    help: str


OPTIONS = (
    Option("--steps", "steps", "training steps"),
    Option("--lr", "learning_rate", "learning rate"),
    Option("--batch-size", "batch_size", "views per training step"),
    Option("--seed", "seed", "makes a run repeatable: the same seed, photo and settings learn the same identity"),
    Option("--views", "views", "augmented views made once per photo (flips, colour, scale)"),
    Option("--resolution", "resolution", "training size in px (default: the model's own)"),
    Option("--attention-loss", "attention_loss", "weight of SeFi-IDE's face-wise attention loss, any method"),
    Option("--attention-tokens", "attention_tokens", "the token maps the attention loss compares: all 77 "
           "(SeFi-IDE), the identity's, or the prompt's"),
    Option("--stages", "stages", "sefi: denoising stages with their own key and value tokens"),
    Option("--mapper-depth", "mapper_depth", "celeb-basis: layers of the MLP (the paper's: 1)"),
    Option("--average", "coefficient_average", "celeb-basis: final coefficients, the mean over the views or the "
           "paper's running average"),
    Option("--tokens", "tokens", "textual-inversion: token vectors per identity"),
    Option("--face", "face_index", "which face when a photo has several: 0 is the largest (default: 0)"),
    Option("--detector", "detector", "dlib's face detector: hog (fast) or cnn (finds more faces, slower)"),
    Option("--face-encoder", "face_encoder", "the face recognizer: dlib, or the path to an ArcFace .onnx file"),
    Option("--checkpoint-every", "checkpoint_every", "steps between checkpoints"),
    Option("--check-every", "check_every", "steps between reads of the loss, when it is shown and checked to be "
           "finite (each read waits for the GPU)"),
)
SWITCHES = (  # on/off LearnConfig fields: (flag, field, help)
    ("--gradient-checkpointing", "gradient_checkpointing", "less memory, slower steps"),
    ("--compile", "compile", "torch.compile the frozen UNet: a slow first step, then faster ones on a GPU"),
    ("--channels-last", "channels_last", "the UNet in channels-last memory format"),
)
TYPES = typing.get_type_hints(LearnConfig)


def default_text(field: str) -> str:
    """"default 800; sefi: 1000": the config's default, then each method's own."""
    value = getattr(LearnConfig(), field)
    if value is None:
        return ""
    own = [f"{method.name}: {method.defaults[field]}" for method in METHODS.values() if field in method.defaults]
    return f" (default {value}{'; ' + '; '.join(own) if own else ''})"


def add_learn_options(parser: argparse.ArgumentParser) -> None:
    """The options that set `LearnConfig` fields (shared with the batch and evaluation commands)."""
    parser.add_argument("--method", choices=tuple(METHODS), default=DEFAULT_METHOD,
                        help="; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
                        + f" (default {DEFAULT_METHOD})")
    for option in OPTIONS:
        kind = TYPES[option.field]
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        number = next((t for t in (int, float) if kind is t or t in typing.get_args(kind)), None)
        parser.add_argument(option.flag, dest=option.field, type=number, choices=choices,
                            help=option.help + default_text(option.field))
    parser.add_argument("--alignment", choices=("words", "positions"),
                        help="celeb-basis: name positions, word-aligned or the reference's first two tokens "
                        f"(default {BasisOptions().alignment})")
    parser.add_argument("--names", help="celeb-basis: the basis's celebrity names, a file with one a line (from "
                        "`anybody basis filter`, say) (default: the shipped list)")
    for flag, field, text in SWITCHES:
        parser.add_argument(flag, dest=field, action="store_true", default=None,
                            help=f"{text} (default {'on' if getattr(LearnConfig(), field) else 'off'})")


def config_from(args: argparse.Namespace) -> LearnConfig:
    """The run's config: the method's defaults, then only the options the user gave."""
    given = {option.field: getattr(args, option.field) for option in OPTIONS}
    given.update({field: getattr(args, field) for _, field, _ in SWITCHES})
    if args.alignment or args.names:
        from anybody.basis.filter import names_file

        given["basis"] = BasisOptions(alignment=args.alignment or BasisOptions.alignment,
                                      names_file=names_file(args.names) if args.names else None)
    config = LearnConfig.for_method(args.method, **given)
    config.check()
    return config


def add_parsers(commands: argparse._SubParsersAction) -> None:
    learn = commands.add_parser("learn", help="learn a person (or several, jointly) from one photo each",
                                description="Learn a person from one photo and save the identity to the library.")
    learn.add_argument("photos", nargs="+", metavar="PHOTO", help="a photo with the person's face (one per name, or "
                       "several of one person with --same-person)")
    learn.add_argument("--name", required=True, help="the identity's name (ASCII letters, digits, - and _), "
                       "comma-separated for several photos learned jointly")
    learn.add_argument("--same-person", action="store_true", help="the photos are all one person: learn one "
                       "identity (one --name) from the views of every photo")
    add_model(learn)
    add_device(learn)
    add_learn_options(learn)
    learn.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    learn.add_argument("--restart", action="store_true", help="discard an interrupted run's checkpoint and start again")
    learn.add_argument("--keep-checkpoint", action="store_true",
                       help="keep the checkpoint once the identity is written (it is removed by default)")
    learn.add_argument("--replace", action="store_true", help="learn again an identity the library already has")
    add_library(learn)
    learn.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)  # bad options are refused before torch, diffusers or dlib is imported
    from anybody.face import load_photo
    from anybody.learning import check_names
    from anybody.models.catalog import locate_model

    names = check_names(args.photos, args.name.split(","), config, args.library, resume=args.resume,
                        replace=args.replace, restart=args.restart, same_person=args.same_person)
    for photo in args.photos:  # fail on a bad photo before loading a model of several GB
        load_photo(photo)
    locate_model(args.model)  # a model that cannot be had is refused before torch is imported
    from anybody.interfaces.signals import sigterm_as_interrupt
    from anybody.learning import learn
    from anybody.learning.precision import check_request
    from anybody.models import load_pipeline

    check_request(args.device, args.dtype)
    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype, config=args.config)
    with sigterm_as_interrupt():
        identities = learn(args.photos, names, pipe, config, library=args.library, resume=args.resume,
                           restart=args.restart, replace=args.replace, keep_checkpoint=args.keep_checkpoint,
                           same_person=args.same_person)
    for identity in identities:
        print(f"Learned {identity.name}: {identity.path}")
    print(next_command([(identity.name, identity.metadata, identity.widths) for identity in identities],
                       args.library))
    return 0
