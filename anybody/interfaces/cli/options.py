"""Options several commands share, with their help (defaults named from where they live)."""

from __future__ import annotations

import argparse

from anybody import settings
from anybody.models.catalog import TINY_NAMES as BUILT_IN_MODELS

DTYPES = ("fp32", "fp16", "bf16")


def add_model(parser: argparse.ArgumentParser, *, single_file: bool = True, default: str | None = None) -> None:
    default = default or f"ANYBODY_MODEL or {settings.DEFAULT_MODEL}"
    parser.add_argument("--model", help="a Hub id, a diffusers folder, a .safetensors/.ckpt file, or a built-in "
                        f"{', '.join(BUILT_IN_MODELS)} (random weights, for trying things out) (default: {default})")
    if single_file:
        parser.add_argument("--config", help="a diffusers folder giving a single checkpoint file's layout, so that "
                            "loading one needs no network")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", choices=DTYPES, help="default: bf16 on CUDA (fp16 where bf16 is missing), "
                        "fp16 on MPS, fp32 on the CPU")


def add_library(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", help="the identity library folder (default: ANYBODY_HOME/identities, now "
                        f"{settings.library_folder()})")


def split_names(text: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]
