"""A fork server for the SIGKILL trials: imports anybody once, then forks one `anybody` CLI run per request.

A fresh `python -m anybody.interfaces.cli learn ...` spends most of its life importing torch, diffusers
and dlib (8 s on 2 busy cores), where a kill proves nothing. Here the imports and the face models are
loaded once; each request forks a child that runs `anybody.interfaces.cli.main(argv)`, exactly what the
`anybody` command runs, with its stdout and stderr in a log file. SIGKILL cannot be caught, so a killed
child leaves the disk exactly as a killed `anybody` process would.

Protocol, one JSON object per line on stdin: {"argv": [...], "log": PATH, "fault": null | {...}}. The
server answers "pid N" as soon as the child runs; after the next line ("reap") it waits for the child
and answers "exit S" (S < 0: killed by signal -S). Until then a finished child stays a zombie, so a kill
sent to N always reaches that child (or nothing), never a process that reused its pid.

A fault kills the child from inside `os.replace`, at a chosen write of a chosen file:
{"file": "kim.safetensors", "nth": 1, "when": "partial" | "before" | "after"}: the temporary file cut
to half its size / complete but not yet renamed / just renamed, the folder not yet synced.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys


def _preload() -> None:
    import diffusers  # noqa: F401
    import torch

    torch.set_num_threads(1)
    from anybody.face.models import cnn_detector, hog_detector, landmark_predictor, recognizer
    from anybody.interfaces.cli import _quiet_libraries, main
    from anybody.learning import learn  # noqa: F401
    from anybody.models import load_pipeline  # noqa: F401

    for model in (hog_detector, cnn_detector, landmark_predictor, recognizer):
        model()
    _quiet_libraries(False)
    # Build the tiny model and its celeb basis now (once per ANYBODY_HOME), and import what diffusers
    # and transformers import lazily: every child starts where a second `anybody learn` would.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["basis", "--model", "tiny"]) == 0


def _install_fault(fault: dict) -> None:
    real_replace = os.replace
    seen = {"count": 0}

    def replace(source, target, *args, **kwargs):
        if os.path.basename(os.fspath(target)) == fault["file"]:
            seen["count"] += 1
            if seen["count"] == fault["nth"]:
                if fault["when"] == "partial":
                    os.truncate(source, os.path.getsize(source) // 2)
                if fault["when"] in ("partial", "before"):
                    os.kill(os.getpid(), signal.SIGKILL)
                real_replace(source, target, *args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(source, target, *args, **kwargs)

    os.replace = replace


def _child(request: dict) -> None:
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 1
    try:
        if request.get("fault"):
            _install_fault(request["fault"])
        from anybody.interfaces.cli import main

        code = main(request["argv"])
    except BaseException as error:  # a bug: show it in the log, as the CLI would
        import traceback

        traceback.print_exception(error)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    _preload()
    print("ready", flush=True)
    while line := sys.stdin.readline():
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(f"pid {pid}", flush=True)
        sys.stdin.readline()  # "reap": until then a finished child stays a zombie, so its pid is not reused
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {code}", flush=True)


if __name__ == "__main__":
    serve()
