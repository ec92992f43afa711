"""The `anybody` command: learn, generate, face, basis, demo.

Every problem a user can cause is an `AnybodyError`, printed as one line ("error: what. fix.") with exit
code 2; so is a path the file system refuses (an `OSError` naming a file). `--debug` shows the traceback
too. Ctrl-C while learning saves a checkpoint and exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from anybody import __version__, settings
from anybody.errors import AnybodyError, out_of_memory

SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "data" / "sample_face.jpg"
DEMO_NAME = "eileen"  # the sample photo is astronaut Eileen Collins (NASA, public domain)
log = logging.getLogger("anybody")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anybody",
        description="Put a real person into a text-to-image diffusion model from one photo.",
        epilog=f"Files live under ANYBODY_HOME (now {settings.home()}); the default model is ANYBODY_MODEL "
        f"(now {settings.default_model()}).",
    )
    parser.add_argument("--version", action="version", version=f"anybody {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    learn = commands.add_parser("learn", help="learn a person (or several, jointly) from one photo each")
    learn.add_argument("photos", nargs="+", metavar="PHOTO")
    learn.add_argument("--name", required=True, help="the identity's name, comma-separated for several photos")
    _model_arguments(learn)
    learn.add_argument("--method", choices=("celeb-basis", "sefi"), default="celeb-basis",
                       help="celeb-basis (default) or sefi: per-stage key/value tokens + face-wise attention loss")
    learn.add_argument("--steps", type=int, help="training steps (default 800; sefi 1000)")
    learn.add_argument("--seed", type=int, default=0, help="makes a run repeatable (default 0)")
    learn.add_argument("--lr", type=float, help="learning rate (default 0.01 AdamW; sefi 0.005 Adam)")
    learn.add_argument("--attention-loss", type=float,
                       help="weight of the face-wise attention loss (default 0; sefi 0.003)")
    learn.add_argument("--attention-tokens", choices=("all", "identity", "prompt"), default="all",
                       help="token maps the attention loss compares (SeFi-IDE: all 77)")
    learn.add_argument("--stages", type=int, default=5, help="sefi: denoising stages with their own tokens")
    learn.add_argument("--batch-size", type=int, default=2)
    learn.add_argument("--views", type=int, default=32, help="augmented views computed per photo (default 32)")
    learn.add_argument("--resolution", type=int, help="training size in px (default: the model's own)")
    learn.add_argument("--mapper-depth", type=int, default=1, help="MLP layers (paper: 1)")
    learn.add_argument("--average", choices=("views", "ema"), default="views",
                       help="final coefficients: mean over the views (default) or the paper's running average")
    learn.add_argument("--face", type=int, dest="face_index",
                       help="which face when the photo has several (0 = largest)")
    learn.add_argument("--detector", choices=("hog", "cnn"), default="hog")
    learn.add_argument("--face-encoder", default="dlib", help="'dlib' or the path to an ArcFace .onnx file")
    learn.add_argument("--alignment", choices=("words", "positions"), default="words",
                       help="celeb basis name positions: word-aligned (default) or the reference's first two tokens")
    learn.add_argument("--gradient-checkpointing", action="store_true", help="less memory, slower steps")
    learn.add_argument("--checkpoint-every", type=int, default=100)
    learn.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    learn.add_argument("--replace", action="store_true", help="learn again an identity the library already has")
    learn.add_argument("--library", help="identity library folder (default ANYBODY_HOME/identities)")

    generate = commands.add_parser("generate", help="draw learned people from a prompt")
    generate.add_argument("prompt")
    generate.add_argument("--identity", default="", help="identity names or files, comma-separated")
    generate.add_argument("--model", help="default: the model the identity was learned on")
    generate.add_argument("--device")
    generate.add_argument("--dtype", choices=("fp32", "fp16", "bf16"))
    generate.add_argument("-n", "--num-images", type=int, default=4)
    generate.add_argument("--batch-size", type=int, default=4,
                          help="images drawn at once (default 4); more are drawn in turn, with the same result")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--steps", type=int, default=50)
    generate.add_argument("--guidance", type=float, default=7.5)
    generate.add_argument("--height", type=int)
    generate.add_argument("--width", type=int)
    generate.add_argument("--negative", help="negative prompt")
    generate.add_argument("--scheduler", choices=("ddim", "model"), default="ddim",
                          help="DDIM (default) or the model's own scheduler")
    generate.add_argument("--out", help="output folder (default anybody-output/<time>)")
    generate.add_argument("--library")

    face = commands.add_parser("face", help="show what will be learned from a photo")
    face.add_argument("photo")
    face.add_argument("--out", default="anybody-output/face")
    face.add_argument("--face", type=int, dest="face_index")
    face.add_argument("--detector", choices=("hog", "cnn"), default="hog")

    basis = commands.add_parser("basis", help="build or show the celeb basis of a model")
    _model_arguments(basis)
    basis.add_argument("--alignment", choices=("words", "positions"), default="words")
    basis.add_argument("--names", help="a names file, one per line (default: the shipped list)")
    basis.add_argument("--components", type=int, default=512, help="at most this many per position")

    identities = commands.add_parser("identities", help="the identity library: list, show, remove")
    identities.add_argument("action", nargs="?", choices=("list", "show", "remove"), default="list")
    identities.add_argument("name", nargs="?", help="the identity to show or remove")
    identities.add_argument("--library")
    identities.add_argument("--model", help="flag the identities that do not fit this model")
    identities.add_argument("--yes", action="store_true", help="remove without asking")

    export = commands.add_parser("export", help="write an identity for diffusers, AUTOMATIC1111, kohya or ComfyUI")
    export.add_argument("identity", help="a library name or an identity file")
    export.add_argument("--format", required=True, choices=("diffusers", "a1111", "a1111-safetensors", "kohya",
                                                              "comfyui"))
    export.add_argument("--out", help="the file (or SDXL diffusers folder) to write; default anybody-output/exports/")
    export.add_argument("--token", help="diffusers only: the prompt token (default <name>)")
    export.add_argument("--library")

    import_ = commands.add_parser("import", help="add an existing textual-inversion embedding to the library")
    import_.add_argument("file", help=".safetensors, or .pt/.bin (read without running any code)")
    import_.add_argument("--name", required=True)
    import_.add_argument("--model", help="check that the embedding's width fits this model")
    import_.add_argument("--replace", action="store_true", help="replace an identity of the same name")
    import_.add_argument("--library")

    attention = commands.add_parser("attention", help="draw where each word of a prompt attends (one picture)")
    attention.add_argument("prompt")
    attention.add_argument("--identity", default="", help="identity names or files, comma-separated")
    attention.add_argument("--model", help="default: the model the identity was learned on")
    attention.add_argument("--seed", type=int, default=42)
    attention.add_argument("--steps", type=int, default=50)
    attention.add_argument("--guidance", type=float, default=7.5)
    attention.add_argument("--level", type=int, default=1,
                           help="cross-attention level: 0 the finest, 1 SeFi-IDE's 32x32 at 512 px (default)")
    attention.add_argument("--out", default="attention.png")
    attention.add_argument("--library")
    attention.add_argument("--device")

    demo = commands.add_parser("demo", help="the whole path on the built-in tiny model and the sample photo")
    demo.add_argument("--out", default="anybody-output/demo")
    demo.add_argument("--model", default="tiny", help="default tiny (random weights); name a real model here")
    demo.add_argument("--steps", type=int, help="training steps (default 150 on tiny, 800 otherwise)")
    return parser


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Hub id, diffusers folder, .safetensors/.ckpt file or 'tiny' "
                        "(default: ANYBODY_MODEL or " + settings.DEFAULT_MODEL + ")")
    parser.add_argument("--config", help="a diffusers folder giving a single checkpoint file's layout (offline)")
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), help="default: bf16/fp16 on GPU, fp32 on CPU")


def run_learn(args: argparse.Namespace) -> int:
    from anybody.basis import BasisOptions
    from anybody.face import load_photo
    from anybody.learning import LearnConfig, check_names, learn
    from anybody.models import load_pipeline

    given = {"steps": args.steps, "learning_rate": args.lr, "attention_loss": args.attention_loss}
    config = LearnConfig.for_method(
        args.method, **{key: value for key, value in given.items() if value is not None},
        batch_size=args.batch_size, seed=args.seed, views=args.views, stages=args.stages,
        attention_tokens=args.attention_tokens, resolution=args.resolution, mapper_depth=args.mapper_depth,
        coefficient_average=args.average, face_index=args.face_index, detector=args.detector,
        face_encoder=args.face_encoder, gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every=args.checkpoint_every, basis=BasisOptions(alignment=args.alignment),
    )
    config.check()
    names = check_names(args.photos, args.name.split(","), config, args.library, resume=args.resume,
                        replace=args.replace)
    for photo in args.photos:  # fail on a bad photo before loading a model of several GB
        load_photo(photo)
    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype, config=args.config)
    identities = learn(args.photos, names, pipe, config, library=args.library, resume=args.resume,
                       replace=args.replace)
    for identity in identities:
        print(f"Learned {identity.name}: {identity.path}")
    print(f'Next: anybody generate "a photo of {identities[0].name} on a beach" --identity {identities[0].name}'
          + (f" --library {args.library}" if args.library else ""))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from anybody.generation import generate

    identities = [name.strip() for name in args.identity.split(",") if name.strip()]
    out = args.out or f"anybody-output/{time.strftime('%Y%m%d-%H%M%S')}"
    result = generate(
        args.prompt, identities, args.model, num_images_per_prompt=args.num_images, num_inference_steps=args.steps,
        guidance_scale=args.guidance, seed=args.seed, negative_prompt=args.negative, height=args.height,
        width=args.width, scheduler=args.scheduler, out_dir=out, library=args.library, device=args.device,
        dtype=args.dtype, batch_size=args.batch_size,
    )
    for path in result.paths:
        print(path)
    print(f"Contact sheet: {result.sheet}")
    return 0


def run_face(args: argparse.Namespace) -> int:
    from anybody.face import write_face_preview

    for path in write_face_preview(args.photo, Path(args.out), face_index=args.face_index, detector=args.detector):
        print(path)
    return 0


def run_basis(args: argparse.Namespace) -> int:
    from anybody.basis import BasisOptions, build_basis, load_names
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


def run_identities(args: argparse.Namespace) -> int:
    from anybody.errors import UsageError
    from anybody.identity import Identity, library_names

    if args.action == "list":
        return _list_identities(args.library, args.model)
    if not args.name:
        raise UsageError(f"identities {args.action} needs a name", f"anybody identities {args.action} NAME")
    identity = Identity.load(args.name, args.library)
    if args.action == "show":
        print(f"{identity.name}: {identity.path} ({identity.path.stat().st_size:,} bytes)")
        for encoder, embeddings in identity.encoder_embeddings.items():
            coefficients = identity.encoder_coefficients.get(encoder)
            shown = f", coefficients {tuple(coefficients.shape)}" if coefficients is not None else ""
            print(f"  {encoder}: embeddings {tuple(embeddings.shape)}{shown}")
        for key, value in sorted(identity.metadata.items()):
            print(f"  {key}: {value}")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"Removing {identity.name} needs a confirmation", "Add --yes to remove without asking")
        if input(f"Remove {identity.name} ({identity.path})? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Kept.")
            return 1
    identity.path.unlink()
    print(f"Removed {identity.name}. Left: {', '.join(library_names(args.library)) or 'none'}")
    return 0


def _list_identities(library: str | None, model: str | None) -> int:
    from anybody.errors import AnybodyError
    from anybody.generation import check_fits
    from anybody.identity import Identity, library_names
    from anybody.models import load_pipeline

    names = library_names(library)
    if not names:
        print(f"No identities in {settings.library_folder(library)} yet: anybody learn PHOTO --name NAME")
        return 0
    pipe = load_pipeline(model, device="cpu") if model else None
    rows = [("name", "method", "base model", "width", "created", "")]
    for name in names:
        try:
            identity = Identity.load(name, library)
        except AnybodyError as error:
            rows.append((name, "unreadable", "", "", "", f"! {error.problem}"))
            continue
        note = ""
        if pipe is not None:
            try:
                check_fits(identity, pipe)
            except AnybodyError:
                note = f"! does not fit {model}"
        widths = "+".join(str(e.shape[1]) for e in identity.encoder_embeddings.values())
        rows.append((name, identity.method, identity.base_model, widths, str(identity.metadata.get("created", ""))[:10],
                     note))
    widths_ = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths_)).rstrip())
    return 0


def run_export(args: argparse.Namespace) -> int:
    from anybody.identity import Identity
    from anybody.identity.formats import FORMATS, export_file_name, export_identity

    identity = Identity.load(args.identity, args.library)
    out = Path(args.out) if args.out else Path("anybody-output/exports") / export_file_name(identity, args.format)
    path = export_identity(identity, args.format, out, token=args.token)
    print(f"{path}\n  {FORMATS[args.format].prompt}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from anybody.errors import IdentityError
    from anybody.identity import identity_path, validate_name
    from anybody.identity.formats import import_embedding
    from anybody.models import load_pipeline, text_encoders

    name = validate_name(args.name)
    if identity_path(name, args.library).exists() and not args.replace:
        raise IdentityError(f"The library already has an identity called {name}",
                            f"Choose another name (e.g. {name}_2), or pass --replace")
    widths = None
    if args.model:
        pipe = load_pipeline(args.model, device="cpu")
        widths = {key: encoder.get_input_embeddings().weight.shape[1] for key, _, encoder in text_encoders(pipe)}
    identity = import_embedding(args.file, name, widths)
    if args.model:
        identity.metadata["base_model"] = args.model
    path = identity.save(library=args.library)
    print(f"Imported {name} ({identity.token_count} vectors): {path}")
    return 0


def run_attention(args: argparse.Namespace) -> int:
    from anybody.generation import attention_map

    identities = [name.strip() for name in args.identity.split(",") if name.strip()]
    path = attention_map(args.prompt, identities, args.model, out=args.out, seed=args.seed,
                         num_inference_steps=args.steps, guidance_scale=args.guidance, level=args.level,
                         library=args.library, device=args.device)
    print(path)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from anybody.generation import generate
    from anybody.learning import LearnConfig, learn
    from anybody.models import load_pipeline

    out = Path(args.out)
    tiny = args.model == "tiny"
    if tiny:
        print("The demo runs on the built-in `tiny` model: a small Stable Diffusion with RANDOM weights, so its "
              "pictures are noise. It proves the whole path runs. For real pictures add one flag:\n"
              f"    anybody demo --model {settings.DEFAULT_MODEL}\n")
    steps = args.steps or (150 if tiny else 800)
    pipe = load_pipeline(args.model)
    identity = learn(SAMPLE_PHOTO, DEMO_NAME, pipe, LearnConfig(steps=steps, views=16 if tiny else 32),
                     library=out, replace=True)[0]
    print(f"Identity file: {identity.path}")
    prompt = f"a photo of {DEMO_NAME} as an astronaut on the moon"
    result = generate(prompt, identity, pipe, num_images_per_prompt=4, num_inference_steps=25 if tiny else 50,
                      seed=42, out_dir=out)
    for path in result.paths:
        print(f"Image: {path}")
    print(f"Contact sheet: {result.sheet}")
    return 0


COMMANDS = {"learn": run_learn, "generate": run_generate, "face": run_face, "basis": run_basis,
            "identities": run_identities, "export": run_export, "import": run_import, "attention": run_attention,
            "demo": run_demo}


@contextlib.contextmanager
def _user_logging(debug: bool) -> Iterator[None]:
    """Print anybody's notes as "INFO: ..." lines on stderr while a command runs, then restore logging."""
    saved = (log.handlers[:], log.level, log.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    _quiet_libraries(debug)
    try:
        yield
    finally:
        log.handlers[:], log.level, log.propagate = saved


def _quiet_libraries(debug: bool) -> None:
    if not debug:  # the libraries' own notices and loading bars mean nothing to a user of anybody
        import warnings

        import diffusers.utils.logging as diffusers_logging
        import transformers.utils.logging as transformers_logging

        warnings.filterwarnings("ignore")
        for library in (diffusers_logging, transformers_logging):
            library.set_verbosity_error()
            library.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _user_logging(args.debug):
            return COMMANDS[args.command](args)
    except AnybodyError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 130 if type(error).__name__ == "Interrupted" else 2
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130
    except (RuntimeError, MemoryError) as error:
        problem = out_of_memory(error)
        if args.debug or problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except OSError as error:  # the file system refused a path anybody did not check first: still one line
        if args.debug or error.filename is None:
            raise
        print(f"error: {error.filename}: {error.strerror or error}. Check the path, its permissions and the free "
              "space (--debug shows where it happened).", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
