"""`anybody learn-batch`: learn every photo of a folder (or the rows of a CSV), one identity each, shared out
among the processes of `accelerate launch` or `torchrun` (see `anybody/learning/batch.py`)."""

from __future__ import annotations

import argparse
from argparse import Namespace

from anybody import settings
from anybody.interfaces.cli.learn import add_learn_options, config_from
from anybody.interfaces.cli.options import DTYPES, add_library, add_model

SUMMARY = "learn-batch-summary.json"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "learn-batch", help="learn many people, one photo each, on one or many GPUs",
        description="Learn one identity per photo of FOLDER (named after the file: alice.jpg is alice), or per "
        "row of a CSV. Identities already in the library are skipped, so a rerun resumes. Exits 0 when every "
        "photo was learned or skipped, 1 when any failed (the summary says why), 2 for a bad command. On several "
        "GPUs or machines: accelerate launch --multi_gpu --num_processes N -m anybody learn-batch FOLDER (or torchrun "
        "--nproc_per_node N -m anybody learn-batch FOLDER); each identity is learned by one process.")
    batch.add_argument("folder", help="the folder of photos (one per person, named after the person)")
    batch.add_argument("--csv", help="a CSV with the header photo,name[,method] (photos relative to FOLDER), "
                       "instead of naming people after their files")
    add_model(batch, single_file=False)
    batch.add_argument("--dtype", choices=DTYPES, help="default: bf16 on CUDA (fp16 where bf16 is missing), "
                       "fp16 on MPS, fp32 on the CPU")
    batch.add_argument("--cpu", action="store_true", help="learn on the CPU even where there is a GPU")
    add_learn_options(batch)
    add_library(batch)
    batch.add_argument("--summary", help="where the JSON summary goes (default: ANYBODY_HOME/"
                       f"{SUMMARY}, now {settings.home() / SUMMARY})")
    batch.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from anybody.learning.batch import learn_batch, read_jobs, write_summary
    from anybody.models.catalog import locate_model

    jobs = read_jobs(args.folder, args.csv)
    config_from(args)  # bad options refused before anything loads
    locate_model(args.model)  # a model that cannot be had is refused before torch is imported
    from anybody.learning.precision import check_request

    check_request("cpu" if args.cpu else None, args.dtype)
    summary = learn_batch(jobs, args.model, lambda method: config_from(Namespace(**{**vars(args),
                                                                                  "method": method or args.method})),
                          library=args.library, dtype=args.dtype, cpu=args.cpu)
    if not summary.main:  # the main process reports for all, and exits last: a launcher stops the others
        return 0  # when one exits non-zero, which must not cut the main process's summary short
    failed = 1 if summary.of("failed") else 0
    for line in summary.lines():
        print(line)
    path = write_summary(summary, args.summary or settings.home() / SUMMARY)
    print(f"Summary: {path}")
    return failed
