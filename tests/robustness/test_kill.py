"""Nothing lost: `anybody learn` killed with SIGKILL at random moments leaves only complete, loadable files.

One short learning run (the tiny model, a checkpoint after every step and kept at the end, `--replace` over
the identity of the run before) is started again and again and killed at a moment drawn at random over the duration of a
whole run, so the kills fall in start-up, in learning, in checkpoint writes and in the final save. Two
more kills are placed inside the atomic write itself, where random timing rarely lands: a checkpoint's
temporary file complete but not yet renamed, and the identity's temporary file half written. After
every kill the library is checked: every identity file reads, the checkpoint loads, no temporary file
shows as an identity, and the identity of the run before is untouched unless the new one replaced it
whole. Some trials then `--resume`: the run continues from the checkpoint's step and ends with the
identity an uninterrupted run makes.

The runs are forked from a server that imports anybody once (`learn_server.py`): the child runs the
same `main()` as the `anybody` command, so a SIGKILL there is a SIGKILL of `anybody`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from anybody.identity import library_names, read_identity
from anybody.interfaces.cli import main
from anybody.learning.checkpoint import load_checkpoint
from tests.robustness.bad_files import portrait

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="SIGKILL trials need POSIX fork and signals")

STEPS = 6
RANDOM_TRIALS = 20
RESUMES = 2
NAME = "kim"
SERVER = Path(__file__).with_name("learn_server.py")


class Server:
    """The fork server (see learn_server.py): `start` a CLI run, `finish` it (killing it first if asked)."""

    def __init__(self, errors: Path) -> None:
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
        self.errors = errors
        with errors.open("w") as stderr:
            self.process = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=root)
        assert self._read() == "ready"

    def _read(self) -> str:
        line = self.process.stdout.readline().strip()
        assert line, f"the fork server stopped (exit {self.process.poll()}): {self.errors.read_text()[-2000:]}"
        return line

    def start(self, argv: list[str], log: Path, fault: dict | None = None) -> int:
        self.process.stdin.write(json.dumps({"argv": argv, "log": str(log), "fault": fault}) + "\n")
        self.process.stdin.flush()
        word, pid = self._read().split()
        assert word == "pid"
        return int(pid)

    def finish(self) -> int:
        self.process.stdin.write("reap\n")
        self.process.stdin.flush()
        word, code = self._read().split()
        assert word == "exit"
        return int(code)

    def run(self, argv: list[str], log: Path, fault: dict | None = None) -> int:
        self.start(argv, log, fault)
        return self.finish()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = Server(tmp_path_factory.mktemp("learn-server") / "stderr.log")
    yield started
    started.close()


def _check_library(library: Path) -> dict:
    """Everything a user (or the next run) would read is complete; returns what is there."""
    found = {"identity": None, "checkpoint_step": None, "temporary": 0}
    for path in library.iterdir():
        if path.name == ".checkpoints":
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            found["temporary"] += 1  # a killed write's leftover: hidden, never read as an identity
            continue
        assert path.name == f"{NAME}.safetensors", f"unexpected file in the library: {path.name}"
        found["identity"] = read_identity(path)  # raises on anything incomplete
    for path in (library / ".checkpoints").glob("*"):
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            found["temporary"] += 1
            continue
        assert path.name == f"{NAME}.safetensors", f"unexpected file among the checkpoints: {path.name}"
        state = load_checkpoint(path)  # raises on anything incomplete
        assert 1 <= state.step <= STEPS and state.learner
        found["checkpoint_step"] = state.step
    assert library_names(library) == ([NAME] if found["identity"] else [])
    return found


def _listed_as_readable(library: Path, capsys) -> None:
    """What `anybody identities` shows: no row marked unreadable, no temporary file as a name."""
    assert main(["identities", "--library", str(library)]) == 0
    listing = capsys.readouterr().out
    assert "unreadable" not in listing and ".tmp" not in listing


def _embeddings(library: Path) -> torch.Tensor:
    return read_identity(library / f"{NAME}.safetensors").embeddings


def _wait_for(path: Path, limit: float = 120.0) -> None:
    """Poll until the file exists."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written within {limit:.0f} s"
        time.sleep(0.005)


def _kill_moments(learning: float, written: float, rng: random.Random) -> list[tuple[bool, float]]:
    """(after the first checkpoint?, seconds): half the trials in start-up (counted from the start, up to
    when the reference run wrote its first checkpoint), the others counted from the trial's own first
    checkpoint, over the rest of the run up to the final save, where the files are written. Stratified,
    so each stretch is covered evenly, and anchored, so a slower machine does not shift them all."""
    early = RANDOM_TRIALS // 2
    late = RANDOM_TRIALS - early
    return ([(False, learning * (index + rng.random()) / early) for index in range(early)]
            + [(True, (written - learning) * (index + rng.random()) / late) for index in range(late)])


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_only_complete_loadable_files(server, tmp_path, capsys):
    library = tmp_path / "library"
    checkpoint = library / ".checkpoints" / f"{NAME}.safetensors"
    identity = library / f"{NAME}.safetensors"
    photo = tmp_path / "me.png"
    portrait().save(photo)  # the sample's face, cropped: the same person, half the detection time

    def argv(resume: bool = False) -> list[str]:
        return ["learn", str(photo), "--name", NAME, "--model", "tiny", "--library", str(library), "--steps",
                str(STEPS), "--checkpoint-every", "1", "--views", "1", "--batch-size", "1", "--replace",
                "--keep-checkpoint", *(["--resume"] if resume else [])]

    # A whole run: the reference identity, and when its first checkpoint and its identity file appear.
    began = time.monotonic()
    server.start(argv(), tmp_path / "reference.log")
    _wait_for(checkpoint)
    learning = time.monotonic() - began
    _wait_for(identity)
    written = time.monotonic() - began
    assert server.finish() == 0, (tmp_path / "reference.log").read_text()
    reference = _embeddings(library)
    assert load_checkpoint(checkpoint).step == STEPS

    # Kills inside the atomic write (writes take milliseconds: random moments rarely land in one). Every
    # write of the run replaces a file called kim.safetensors: the checkpoint after each step (the last
    # one is the final state), then the identity.
    for nth, when in ((3, "before"), (STEPS + 1, "partial")):  # checkpoint 3 whole, the identity half written
        checkpoint.unlink()
        before = identity.read_bytes()
        log = tmp_path / f"fault-{nth}-{when}.log"
        fault = {"file": f"{NAME}.safetensors", "nth": nth, "when": when}
        assert server.run(argv(), log, fault) == -signal.SIGKILL, log.read_text()
        found = _check_library(library)
        assert found["temporary"] >= 1  # the killed write's temporary file: left, hidden, never read
        assert identity.read_bytes() == before  # the previous identity, byte for byte
        assert found["checkpoint_step"] == (2 if nth == 3 else STEPS)

    # Kills at random moments, from start-up to the final save.
    outcomes: list[str] = []
    resumed = 0
    for trial, (after_checkpoint, delay) in enumerate(_kill_moments(learning, written, random.Random(20240605))):
        checkpoint.unlink(missing_ok=True)  # the checkpoint found after the kill is this run's own
        before = identity.read_bytes()
        pid = server.start(argv(), tmp_path / f"trial-{trial}.log")
        if after_checkpoint:
            _wait_for(checkpoint)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)  # not reaped before `finish`: this pid is still that run's
        code = server.finish()
        found = _check_library(library)
        replaced = identity.read_bytes() != before
        if replaced:  # the new identity went in whole, made exactly as the reference was
            assert torch.allclose(found["identity"].embeddings, reference, atol=1e-5)
        step = found["checkpoint_step"]
        outcomes.append(f"{delay:.2f}s after the {'first checkpoint' if after_checkpoint else 'start'}: exit {code}, "
                        f"checkpoint {step}, identity {'new' if replaced else 'old'}")
        # Resume twice: once from an early checkpoint, once from one past half-way.
        if step is not None and step < STEPS and resumed < RESUMES and (not resumed or step > STEPS // 2):
            resumed += 1
            log = tmp_path / f"trial-{trial}-resume.log"
            assert server.run(argv(resume=True), log) == 0, log.read_text()
            assert f"Resuming from step {step} of {STEPS}" in log.read_text()
            assert load_checkpoint(checkpoint).step == STEPS
            assert torch.allclose(_embeddings(library), reference, atol=1e-5)  # as if never interrupted
            _check_library(library)
    _listed_as_readable(library, capsys)
    print(f"first checkpoint {learning:.2f}s, identity {written:.2f}s after the start; trials:", *outcomes,
          sep="\n")
    killed = [line for line in outcomes if "exit -9" in line]
    assert len(killed) >= RANDOM_TRIALS * 3 // 4, "most trials must end by the kill, not finish first"
    assert any("checkpoint None" in line for line in killed), "no kill landed in start-up"
    assert any("checkpoint None" not in line for line in killed), "no kill landed in learning"
    assert resumed >= 1


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_says_how_to_resume_and_resume_finishes_the_run(server, tmp_path, signal_number):
    """Ctrl-C (or a polite SIGTERM, as from a job scheduler) mid-run: exit 130, one line saying how to go on,
    the checkpoint of the last finished step saved; `--resume` then ends where an uninterrupted run ends."""
    steps, every = 60, 5
    photo = tmp_path / "me.png"
    portrait().save(photo)

    def argv(library: Path, resume: bool = False) -> list[str]:
        return ["learn", str(photo), "--name", NAME, "--model", "tiny", "--library", str(library), "--steps",
                str(steps), "--checkpoint-every", str(every), "--views", "1", "--batch-size", "1",
                *(["--resume"] if resume else [])]

    assert server.run(argv(tmp_path / "whole"), tmp_path / "whole.log") == 0
    reference = read_identity(tmp_path / "whole" / f"{NAME}.safetensors").embeddings

    library = tmp_path / "library"
    pid = server.start(argv(library), tmp_path / "stopped.log")
    checkpoint = library / ".checkpoints" / f"{NAME}.safetensors"
    _wait_for(checkpoint)  # learning is under way (step 5 done)
    time.sleep(0.2)
    os.kill(pid, signal_number)
    assert server.finish() == 130
    said = [line for line in (tmp_path / "stopped.log").read_text().splitlines() if line.startswith("error:")]
    assert len(said) == 1 and "interrupted after step" in said[0] and "--resume" in said[0], said
    stopped_at = load_checkpoint(checkpoint).step  # the step the message names, saved on the way out
    assert f"after step {stopped_at} of {steps}" in said[0]
    assert every <= stopped_at < steps and not (library / f"{NAME}.safetensors").exists()

    assert server.run(argv(library, resume=True), tmp_path / "resumed.log") == 0
    assert f"Resuming from step {stopped_at} of {steps}" in (tmp_path / "resumed.log").read_text()
    assert torch.allclose(_embeddings(library), reference, atol=1e-5)  # as if never interrupted
    assert not checkpoint.exists()  # a finished run removes its checkpoint
