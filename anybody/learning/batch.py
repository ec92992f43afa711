"""Learn many identities, one photo each, on every process of an `accelerate launch` or `torchrun` run.

    anybody learn-batch photos/                                   # one process, one identity after another
    torchrun --nproc_per_node 4 -m anybody learn-batch photos/    # 4 processes (GPUs, or CPU processes)
    accelerate launch --multi_gpu --num_processes 4 -m anybody learn-batch photos/

Data parallel over identities: accelerate's `PartialState` says which process this is, and the job list
(the same, sorted, on every process) is split between the processes with its `split_between_processes`.
Each process loads the model once onto its own device and learns its share one identity at a time; nothing
is exchanged while learning, only the results at the end (`gather_object`), so the main process can write
one summary. Each identity is learned exactly once: it belongs to one process, and one already in the
library is skipped, so a rerun after a crash resumes (an identity interrupted mid-run continues from its
checkpoint). A photo that fails (unreadable, no face, learning diverged) is recorded with its reason and
the others go on.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from anybody.errors import AnybodyError, Interrupted, UsageError
from anybody.face.photo import PHOTO_SUFFIXES, photo_files
from anybody.identity.names import identity_path, validate_name
from anybody.learning.config import LearnConfig
from anybody.learning.names import checkpoint_path
from anybody.methods import METHODS
from anybody.storage import make_folder, write_json

log = logging.getLogger("anybody")
COLUMNS = ("photo", "name", "method")  # the CSV's columns; method is optional


@dataclass(frozen=True)
class Job:
    """One identity to learn: its photo, its name and its method (None: the command's)."""

    photo: Path
    name: str
    method: str | None = None


@dataclass
class Outcome:
    """What became of one job: "learned", "skipped" or "failed", on which process, and why."""

    name: str
    photo: str
    status: str
    process: int
    reason: str = ""
    seconds: float = 0.0


@dataclass
class Summary:
    """Every process's outcomes (gathered); `main` is True on the process that reports them."""

    processes: int
    outcomes: list[Outcome] = field(default_factory=list)
    main: bool = True

    def of(self, status: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    def to_json(self) -> dict:
        return {"processes": self.processes,
                **{status: [asdict(o) for o in self.of(status)] for status in ("learned", "skipped", "failed")}}

    def lines(self) -> list[str]:
        """The summary a user reads: the counts, then one line per identity, failures with their reason."""
        counts = ", ".join(f"{len(self.of(status))} {status}" for status in ("learned", "skipped", "failed"))
        lines = [f"{counts} ({len(self.outcomes)} identities, {self.processes} "
                 f"process{'es' if self.processes != 1 else ''})"]
        for outcome in sorted(self.outcomes, key=lambda o: (o.status, o.name)):
            detail = {"learned": f"by process {outcome.process} in {outcome.seconds:.0f} s",
                      "skipped": outcome.reason, "failed": f"{outcome.reason} (process {outcome.process})"}
            lines.append(f"  {outcome.status:8} {outcome.name} ({outcome.photo}): {detail[outcome.status]}")
        return lines


def read_jobs(folder: str | os.PathLike[str], table: str | os.PathLike[str] | None = None) -> list[Job]:
    """Every photo of `folder` named by its file name (without the suffix), or the rows of the CSV `table`
    (columns photo,name[,method], with a header; photos relative to `folder`). Checked before anything
    loads: a folder with no photos, a CSV without a column or with a bad row, and a name given twice are
    refused in one line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", "Give the folder that holds the photos")
    if table is None:
        photos = photo_files(folder)
        if not photos:
            raise UsageError(f"The folder {folder} has no photos ({', '.join(PHOTO_SUFFIXES)})",
                             "Put one photo per person in it, named after the person (alice.jpg)")
        jobs = [Job(photo, _name(photo.stem, f"the photo {photo.name}")) for photo in photos]
        where = [job.photo.name for job in jobs]
    else:
        jobs, where = _read_table(folder, Path(table))
    seen: dict[str, str] = {}
    for job, place in zip(jobs, where):
        if job.name in seen:
            raise UsageError(f"The name {job.name} is given twice ({seen[job.name]} and {place})",
                             "Give each person one photo and one name (rename the file, or change the CSV row)")
        seen[job.name] = place
    return jobs


def _read_table(folder: Path, table: Path) -> tuple[list[Job], list[str]]:
    """The CSV's jobs, and where each was given ("row 2")."""
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"The CSV {table} could not be read ({error})",
                         "Give a UTF-8 CSV file with the columns photo,name[,method]") from error
    if not rows:
        raise UsageError(f"The CSV {table} is empty", "Write a header photo,name[,method] and one row per person")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [column for column in COLUMNS[:2] if column not in header]
    if missing:
        raise UsageError(f"The CSV {table} has no {' or '.join(missing)} column (its header: {','.join(rows[0])})",
                         "Start the file with the header photo,name[,method]")
    jobs, where = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UsageError(f"Row {number} of {table} has {len(row)} fields, the header {len(header)}",
                             "Give every row photo,name[,method] as the header does")
        cells = dict(zip(header, (cell.strip() for cell in row)))
        method = cells.get("method") or None
        if method is not None and method not in METHODS:
            raise UsageError(f"Row {number} of {table} names an unknown method {method!r}",
                             f"Use one of: {', '.join(METHODS)} (or leave it empty for --method)")
        if not cells["photo"]:
            raise UsageError(f"Row {number} of {table} has no photo", "Give the photo's path (relative to the folder)")
        name = _name(cells["name"], f"row {number} of {table}")
        jobs.append(Job(folder / cells["photo"], name, method))
        where.append(f"row {number}")
    if not jobs:
        raise UsageError(f"The CSV {table} has a header but no rows", "Add one row per person: photo,name[,method]")
    return jobs, where


def _name(text: str, where: str) -> str:
    try:
        return validate_name(text)
    except AnybodyError as error:
        raise UsageError(f"{where.capitalize()} gives no usable name: {error.problem}",
                         "Rename it (ASCII letters, digits, - and _), or list it in a CSV with --csv") from error


def learn_batch(jobs: Sequence[Job], model: str | None, config_for: Callable[[str | None], LearnConfig], *,
                library: str | os.PathLike[str] | None = None, dtype: str | None = None, cpu: bool = False,
                progress: bool = True) -> Summary:
    """Learn this process's share of `jobs` (all of them in a single process) and return the outcomes of
    every process. `config_for(method)` gives a job's config (None: the command's method). Progress bars
    are drawn by the main process only; every process logs a line per identity."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from anybody.learning.train import learn
    from anybody.models import load_pipeline

    state = PartialState(cpu=cpu or not torch.cuda.is_available())
    outcomes: list[Outcome] = []
    with state.split_between_processes(list(jobs)) as mine:
        todo = []
        for job in mine:
            if identity_path(job.name, library).exists():
                outcomes.append(Outcome(job.name, job.photo.name, "skipped", state.process_index,
                                        "already in the library"))
            else:
                todo.append(job)
        # The main process loads (and builds or downloads into the cache) first, the others then read it;
        # every process passes the barrier, and only one with something to learn loads the model.
        with state.main_process_first():
            pipe = load_pipeline(model, device=state.device, dtype=dtype) if todo else None
        for job in todo:
            started = time.perf_counter()
            try:
                learn(job.photo, job.name, pipe, config_for(job.method), library=library,
                      resume=checkpoint_path([job.name], library).is_file(),
                      progress=progress and state.is_main_process)
            except Interrupted:
                raise
            except AnybodyError as error:
                outcomes.append(Outcome(job.name, job.photo.name, "failed", state.process_index, str(error)))
                log.info("Process %d: %s failed: %s", state.process_index, job.name, error)
                continue
            outcomes.append(Outcome(job.name, job.photo.name, "learned", state.process_index,
                                    seconds=time.perf_counter() - started))
            log.info("Process %d: learned %s.", state.process_index, job.name)
    if state.num_processes > 1:
        outcomes = [Outcome(**record) for record in gather_object([asdict(o) for o in outcomes])]
    return Summary(processes=state.num_processes, outcomes=outcomes, main=state.is_main_process)


def write_summary(summary: Summary, path: str | os.PathLike[str]) -> Path:
    """The summary as JSON (written atomically, its folder made if need be)."""
    path = Path(path)
    make_folder(path.parent)
    write_json(path, summary.to_json())
    return path
