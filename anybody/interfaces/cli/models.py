"""`anybody models`: the models this machine can use without a network; `anybody models download ID`: fetch one.

Listing needs huggingface_hub only (it reads the Hugging Face cache and the pipelines' JSON files), so it answers
at once; a download imports torch only to learn which precision this machine would run the model in, and only
when --dtype does not say it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from anybody import settings
from anybody.identity.families import FAMILY_NAMES
from anybody.interfaces.cli.options import DTYPES

NOT_USABLE = "not a text-to-image pipeline"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models", help="the models this machine can use (built in, and in the Hugging Face cache); "
        "models download ID fetches one",
        description="List the models anybody can use here without a network: the built-in tiny models (random "
        "weights) and the diffusers models in the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub), each with "
        "its family, its size on disk and whether every file a pipeline needs is there.")
    models.add_argument("--json", action="store_true", help="print the list as JSON, for scripts")
    models.set_defaults(run=run_list)
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    download = actions.add_parser(
        "download", help="fetch the files a diffusers pipeline needs from the Hub into the Hugging Face cache",
        description="Fetch only what the pipeline loads (its components' configs and one set of weights each, "
        "safetensors where there are some, fp16 where the model will run in half precision), with progress "
        "bars. A download that stops keeps the files it finished: run it again to fetch the rest.")
    download.add_argument("model", metavar="ID", help=f"a Hub id, such as {settings.DEFAULT_MODEL}")
    download.add_argument("--revision", help="a branch, tag or commit of the repository (default: main)")
    download.add_argument("--dtype", choices=DTYPES, help="the precision the model will run in: fp16 and bf16 "
                          "fetch the fp16 weights where the repository has them (half the size); default: what "
                          "this machine would use (bf16 or fp16 on a GPU, fp32 on the CPU)")
    download.set_defaults(run=run_download)


def run_list(args: argparse.Namespace) -> int:
    from anybody.models.catalog import hub_cache, list_models

    entries, others = list_models()
    if args.json:
        listed = [{**asdict(entry), "usable": entry.usable} for entry in entries]
        print(json.dumps({"cache": str(hub_cache()), "models": listed, "other_models_in_cache": others}, indent=2))
        return 0
    rows = [("model", "family", "size", "files")]
    rows += [(entry.name, _what(entry), _size(entry.size_bytes), _files(entry)) for entry in entries]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"\nHugging Face cache: {hub_cache()}"
          + (f" (also {others} other model{'s' if others != 1 else ''}, not diffusers models)" if others else ""))
    if not any(entry.source == "cache" for entry in entries):
        print(f"No model downloaded yet. Where you are online: anybody models download {settings.DEFAULT_MODEL}")
    return 0


def _what(entry) -> str:
    if entry.kind not in ("text-to-image", "inpainting"):
        return f"{NOT_USABLE} ({entry.kind})"
    family = FAMILY_NAMES.get(entry.family, "family unknown")
    return f"{family} inpainting" if entry.kind == "inpainting" else family


def _files(entry) -> str:
    if entry.source == "built-in":
        return "built in (random weights)"
    if entry.kind not in ("text-to-image", "inpainting"):
        return "-"
    if entry.missing:
        return f"missing {', '.join(entry.missing)} (anybody models download {entry.name})"
    return "complete"


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def run_download(args: argparse.Namespace) -> int:
    from anybody.models.download import download_pipeline

    done = download_pipeline(args.model, revision=args.revision, dtype=args.dtype)
    precision = "fp16" if done.variant == "fp16" else "full-precision"
    family = FAMILY_NAMES.get(done.family, "family unknown")
    print(f"{done.repo_id}: {family} {done.kind} pipeline, {precision} weights, {_size(done.size_bytes)} in "
          f"{done.folder}")
    if done.kind == "text-to-image":
        print(f"Next: anybody learn PHOTO --name NAME --model {done.repo_id}")
    else:
        print(f"Use it with --model {done.repo_id}")
    return 0
