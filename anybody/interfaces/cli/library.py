"""The identity library from the command line: `identities`, `export`, `import`.

Only the format table (`anybody.identity.formats`, plain data) is imported to build the parsers; the
writers and readers, which need torch, are imported when `export` or `import` runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from anybody import settings
from anybody.interfaces.cli.options import add_library

EXPORTS = "anybody-output/exports"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from anybody.identity.formats import FORMATS

    identities = commands.add_parser("identities", help="the identity library: list, show, remove")
    identities.add_argument("action", nargs="?", choices=("list", "show", "remove"), default="list",
                            help="list the library (default), show one identity, or remove one")
    identities.add_argument("name", nargs="?", help="the identity to show or remove")
    add_library(identities)
    identities.add_argument("--model", help="flag the identities that do not fit this model")
    identities.add_argument("--yes", action="store_true", help="remove without asking")
    identities.set_defaults(run=run_identities)

    export = commands.add_parser(
        "export", help="write an identity for A1111, ComfyUI, InvokeAI, kohya or diffusers",
        description=f"Each format goes to its own folder under {EXPORTS}/ unless --out says where; the command "
        "prints the word to type in the tool's prompt.")
    export.add_argument("identity", help="a library name or an identity file")
    export.add_argument("--format", required=True, choices=tuple(FORMATS),
                        help="; ".join(f"{name}: {spec.tools}" for name, spec in FORMATS.items()))
    export.add_argument("--out", help=f"the file (or SDXL diffusers folder) to write (default: "
                                      f"{EXPORTS}/FORMAT/NAME...; in A1111, ComfyUI, InvokeAI and kohya the file "
                                      "name is the prompt word)")
    export.add_argument("--token", help=f"{' and '.join(name for name, spec in FORMATS.items() if spec.token_in_file)}"
                                        " only: the token stored in the file (default <NAME>)")
    export.add_argument("--replace", action="store_true", help="overwrite an existing file (default: refuse)")
    add_library(export)
    export.set_defaults(run=run_export)

    import_ = commands.add_parser("import", help="add an existing textual-inversion embedding to the library")
    import_.add_argument("file", help=".safetensors, .pt/.bin (read without running any code), or a diffusers "
                                      "training output folder (SDXL: learned_embeds.safetensors and "
                                      "learned_embeds_2.safetensors, read together)")
    import_.add_argument("--name", required=True, help="the identity's name in the library")
    import_.add_argument("--model", help="check that the embedding's width fits this model")
    import_.add_argument("--replace", action="store_true", help="replace an identity of the same name")
    add_library(import_)
    import_.set_defaults(run=run_import)


def run_identities(args: argparse.Namespace) -> int:
    """Identity files are read and checked without torch (`anybody.identity.contents`): only --model needs it."""
    from anybody.errors import UsageError
    from anybody.identity import library_names, resolve_identity
    from anybody.identity.contents import read_contents
    from anybody.identity.library import CHECK_NAME

    if args.action == "list":
        return _list_identities(args.library, args.model)
    if not args.name:
        raise UsageError(f"identities {args.action} needs a name", f"anybody identities {args.action} NAME")
    identity = read_contents(resolve_identity(args.name, args.library, fix=CHECK_NAME))
    if args.action == "show":
        print(f"{identity.name}: {identity.path} ({identity.path.stat().st_size:,} bytes)")
        coefficients = identity.shapes("coefficients")
        for encoder, shape in identity.shapes("embeddings").items():
            shown = f", coefficients {coefficients[encoder]}" if encoder in coefficients else ""
            print(f"  {encoder}: embeddings {shape}{shown}")
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
    from anybody.identity import library_names, resolve_identity
    from anybody.identity.contents import read_contents
    from anybody.identity.families import known

    names = library_names(library)
    if not names:
        into = f" --library {shlex.quote(library)}" if library else ""  # learned where it is listed next time
        print(f"No identities in {settings.library_folder(library)} yet: anybody learn PHOTO --name NAME{into}")
        return 0
    fits = _fit_checker(model)
    rows = [("name", "method", "base model", "width", "created", "")]
    for name in names:
        try:
            identity = read_contents(resolve_identity(name, library))
        except AnybodyError as error:
            rows.append((name, "unreadable", "", "", "", f"! {error.problem}"))
            continue
        note = "" if fits(identity.path) else f"! does not fit {model}"
        widths = "+".join(str(shape[1]) for shape in identity.shapes("embeddings").values())
        metadata = identity.metadata
        rows.append((name, str(metadata.get("method", "unknown")), known(metadata.get("base_model")) or "not known",
                     widths, str(metadata.get("created", ""))[:10], note))
    widths_ = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths_)).rstrip())
    return 0


def _fit_checker(model: str | None):
    """identity file -> whether it fits `model` (always True without one; the model is loaded only if named)."""
    if not model:
        return lambda path: True
    from anybody.models.catalog import locate_model

    locate_model(model)  # a model that cannot be had is refused before torch is imported
    from anybody.errors import AnybodyError
    from anybody.generation import check_fits
    from anybody.identity import read_identity
    from anybody.models import load_pipeline

    pipe = load_pipeline(model, device="cpu")

    def fits(path) -> bool:
        try:
            check_fits(read_identity(path), pipe)
        except AnybodyError:
            return False
        return True
    return fits


def run_export(args: argparse.Namespace) -> int:
    """Everything but kohya's file-name rule is checked from the identity file's header, before torch."""
    from anybody.identity import resolve_identity
    from anybody.identity.contents import read_contents
    from anybody.identity.formats import check_export, default_token, export_target, prompt_hint

    contents = read_contents(resolve_identity(args.identity, args.library))
    sdxl = "text_encoder_2" in contents.shapes("embeddings")
    stages = contents.shapes("stage_values").get("text_encoder", (0,))[0]
    out = Path(args.out).expanduser() if args.out else export_target(contents.name, sdxl, args.format, EXPORTS)
    check_export(contents.name, args.format, out, sdxl=sdxl, stages=stages, token=args.token, replace=args.replace)
    from anybody.identity import read_identity
    from anybody.identity.writers import export_identity

    identity = read_identity(contents.path)
    path = export_identity(identity, args.format, out, token=args.token, replace=args.replace)
    hint = prompt_hint(args.format, path, token=args.token or default_token(identity.name),
                       vectors=identity.token_count)
    print(path)
    for line in hint.splitlines():
        print(f"  {line}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from anybody.identity import require_free, validate_name
    from anybody.identity.formats import embedding_source
    from anybody.interfaces.cli.generate import next_command

    name = validate_name(args.name)
    if not args.replace:
        require_free([name], args.library, learning=False)
    embedding_source(args.file)  # a wrong path is refused before torch is imported
    if args.model:
        from anybody.models.catalog import locate_model

        locate_model(args.model)  # a model that cannot be had is refused before torch is imported
    from anybody.identity.readers import import_embedding

    widths, family = None, None
    if args.model:  # only then are diffusers and transformers imported
        from anybody.models import load_pipeline, model_family, text_encoders

        pipe = load_pipeline(args.model, device="cpu")
        widths = {key: encoder.get_input_embeddings().weight.shape[1] for key, _, encoder in text_encoders(pipe)}
        family = model_family(pipe)
    identity = import_embedding(args.file, name, widths)
    if args.model:  # the embedding was checked against this model: it is the one to draw it with
        identity.metadata.update(base_model=args.model, family=family)
    path = identity.save(library=args.library)
    print(f"Imported {name} ({identity.token_count} vectors): {path}")
    print(next_command([(identity.name, identity.metadata, identity.widths)], args.library))
    return 0
