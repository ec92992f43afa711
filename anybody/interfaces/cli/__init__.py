"""The `anybody` command. One module per group of commands, each with `add_parsers(commands)`, which adds
its sub-commands and sets `run` on them:

    learn.py     learn          a person (or several, jointly) from one photo each
    batch.py     learn-batch    many people, one photo each, shared out among GPUs and machines
    generate.py  generate       draw learned people from a prompt
                 attention      draw where each word of a prompt attends
    swap.py      swap           a learned person's face drawn in place of a face in a photo
    face.py      face           what will be learned from a photo
    basis.py     basis          build or show the celeb basis of a model
    library.py   identities     list, show or remove identities
                 export         write an identity for diffusers, AUTOMATIC1111, ComfyUI, InvokeAI, kohya
                 import         add an existing textual-inversion embedding to the library
    mix.py       mix            a new person mixed from learned ones
    evaluate.py  evaluate       every method on the same photos and prompts, scored, with a report
    demo.py      demo           the whole path on the built-in tiny model
    ui.py        ui             the local web app (Gradio): learn, draw and manage identities in a browser
    models.py    models         the models this machine can use; models download fetches one from the Hub

Modules import model libraries only inside `run`, so `--help` and argument errors are quick. Every problem
a user can cause is an `AnybodyError`, printed as one line ("error: what. fix.") with exit code 2; so is a
path the file system refuses (an `OSError` naming a file). `--debug` shows the traceback too. Ctrl-C (or
SIGTERM) while learning saves a checkpoint and exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from importlib import import_module

from anybody import settings
from anybody.errors import AnybodyError, Interrupted, out_of_memory
from anybody.version import __version__

COMMAND_MODULES = ("learn", "batch", "generate", "swap", "face", "basis", "library", "mix", "evaluate", "demo", "ui",
                   "models")
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
    for name in COMMAND_MODULES:
        import_module(f"{__name__}.{name}").add_parsers(commands)
    return parser


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


QUIET_LIBRARIES = {"TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error",
                   "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
"""The libraries' own notices and loading bars mean nothing to a user of anybody. Set in the environment
(where the user's own values win) so that they apply when a command first imports the libraries: importing
them just to quiet them would cost every command seconds. diffusers' loading bar follows
HF_HUB_DISABLE_PROGRESS_BARS through `anybody.models.loading`."""


CPU_THREADS = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP threads that wait for work sleep instead of spinning. torch splits every operator across one
thread per core, and by default its idle OpenMP threads spin; when other processes share the cores, each
operator then waits at its barrier for a thread that has lost its core. Learning on tiny beside other work
ran 16x slower with spinning threads than with sleeping ones (benchmarks/contention.py, BENCHMARKS.md). Set
before a command imports torch; OMP_WAIT_POLICY=ACTIVE (or any value) in the environment is kept."""


def _quiet_libraries(debug: bool) -> None:
    if debug:
        return
    import warnings

    warnings.filterwarnings("ignore")
    for variable, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(variable, value)
    for name in ("diffusers", "transformers"):
        if name in sys.modules:  # imported before the command (a program calling main): settings already read
            library = import_module(f"{name}.utils.logging")
            library.set_verbosity_error()
            library.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for variable, value in CPU_THREADS.items():
        os.environ.setdefault(variable, value)
    try:
        with _user_logging(args.debug):
            return args.run(args)
    except AnybodyError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 130 if isinstance(error, Interrupted) else 2
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
