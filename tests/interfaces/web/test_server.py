"""`anybody ui` as a user starts it: where it listens, what it looks up on the network, where uploads go.

The app runs in its own process (`audited_ui.py`: the real command behind a Python audit hook installed
before Gradio or anything else is imported), is driven through its API, and is stopped with Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anybody.errors import UsageError
from anybody.interfaces.cli import main
from anybody.interfaces.web import server
from tests.interfaces.web.conftest import free_port

AUDITED_UI = Path(__file__).with_name("audited_ui.py")
ROOT = Path(__file__).resolve().parents[3]
LOCAL_NAMES = {None, "", "localhost", "127.0.0.1", "::1"}
STARTED = "anybody is running at"


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the sockets listening on `port`, from the kernel's own tables (Linux)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, _, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                if width == 8:
                    found.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.append(f"ipv6:{address}")
    return found


def wait_for(process: subprocess.Popen, text: str, seconds: float) -> str:
    """The process's stdout up to the line holding `text` (failing with all of its output if it ends first)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"{text!r} never came: {''.join(seen)}{process.stderr.read()}")


@pytest.mark.slow
def test_the_app_listens_on_loopback_looks_up_no_outside_host_and_removes_uploads(tmp_path: Path, photos: Path):
    from gradio_client import Client, handle_file

    audit, temporary, library = tmp_path / "audit.jsonl", tmp_path / "tmp", tmp_path / "library"
    abandoned = temporary / f"{server.WORK_PREFIX}killed"  # what an app killed earlier left behind
    abandoned.mkdir(parents=True)
    (abandoned / "me.jpg").write_bytes(b"an upload")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    (abandoned / server.OWNER_FILE).write_text(str(ended.pid))
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("ANYBODY_MODEL", *server.OFFLINE_ENVIRONMENT, "GRADIO_TEMP_DIR")}
    environment.update(ANYBODY_AUDIT_LOG=str(audit), TMPDIR=str(temporary), PYTHONPATH=str(ROOT),
                       OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, str(AUDITED_UI), "ui", "--port", str(port), "--library",
                                str(library), "--out", str(tmp_path / "out")], cwd=tmp_path, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = wait_for(process, STARTED, 300)
        assert f"http://localhost:{port}/" in printed
        if Path("/proc/net/tcp").exists():
            assert listening_addresses(port) == ["127.0.0.1"]
        (work,) = temporary.glob("anybody-ui-*")
        assert not abandoned.exists(), "the folder of a process that is gone is removed at start"
        assert (work / server.OWNER_FILE).read_text() == str(process.pid)

        app = Client(f"http://127.0.0.1:{port}/", verbose=False)
        _, status = app.predict(handle_file(str(photos / "sample_face.jpg")), 0, "dot", "celeb-basis", 4,
                                "resume", api_name="/learn")
        assert "Learned **dot**" in status
        _, files = app.predict("a photo of dot", ["dot"], "", 1, 2, 7.5, 0, 0, 1, api_name="/draw")
        assert len(files) == 1
        assert list(work.rglob("sample_face.jpg")), "the upload lives in the app's temporary folder"
        assert not list(library.rglob("*.jpg")), "a photo never enters the library"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    assert not list(temporary.glob("anybody-ui-*")), "the uploads are removed when the app stops"
    assert (library / "dot.safetensors").is_file()

    events = [json.loads(line) for line in audit.read_text().splitlines()]
    looked_up = {event["host"] for event in events if "host" in event}
    assert looked_up <= LOCAL_NAMES, f"outside host names looked up: {looked_up - LOCAL_NAMES}"
    bound = [event["address"] for event in events if event["event"] == "socket.bind"
             and isinstance(event["address"], list) and event["address"][1] == port]
    assert bound and all(address[0] == server.LOOPBACK for address in bound), bound
    connected = {event["address"][0] for event in events if event["event"] == "socket.connect"
                 and isinstance(event["address"], list)}
    assert connected <= LOCAL_NAMES, f"connections to outside hosts: {connected - LOCAL_NAMES}"


def test_the_host_is_loopback_unless_shared_on_purpose():
    assert server.choose_host(None, share_on_network=False) == "127.0.0.1"
    assert server.choose_host(None, share_on_network=True) == "0.0.0.0"
    assert server.choose_host("localhost", share_on_network=False) == "localhost"
    assert server.choose_host("192.168.1.5", share_on_network=True) == "192.168.1.5"
    with pytest.raises(UsageError, match=r"Listening on 192\.168\.1\.5 would let other machines reach the app"):
        server.choose_host("192.168.1.5", share_on_network=False)


def test_sharing_on_the_network_binds_every_interface_with_a_password_and_warns(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(server, "serve", lambda model, **options: served.update(model=model, **options))
    monkeypatch.delenv("ANYBODY_MODEL", raising=False)
    monkeypatch.delenv(server.AUTH_ENVIRONMENT, raising=False)
    assert main(["ui", "--share-on-network", "--auth", "ann:pass:word", "--port", str(free_port())]) == 0
    assert served["host"] == "0.0.0.0" and served["model"] == "tiny" and served["auth"] == ("ann", "pass:word")
    err = capsys.readouterr().err
    assert "WARNING: listening on 0.0.0.0: every machine that can reach port" in err and "pass:word" not in err
    monkeypatch.setenv("ANYBODY_MODEL", "tiny-sd2")
    assert main(["ui", "--port", str(free_port())]) == 0
    assert served["host"] == "127.0.0.1" and served["model"] == "tiny-sd2" and served["auth"] is None
    assert "WARNING" not in capsys.readouterr().err


def test_the_password_comes_from_the_environment_and_works_on_loopback_too(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(server, "serve", lambda model, **options: served.update(options))
    monkeypatch.setenv(server.AUTH_ENVIRONMENT, "bea:from-the-environment")
    assert main(["ui", "--port", str(free_port())]) == 0
    assert served["host"] == "127.0.0.1" and served["auth"] == ("bea", "from-the-environment")
    assert main(["ui", "--auth", "cyd:given", "--port", str(free_port())]) == 0
    assert served["auth"] == ("cyd", "given"), "--auth wins over the environment"


@pytest.mark.parametrize(("argv", "line"), [
    (["--share-on-network"], "error: Listening on 0.0.0.0 without a password would let anyone who reaches the port "
                             "use the app and remove every identity. Add --auth USER:PASSWORD (or set "
                             "ANYBODY_UI_AUTH), or leave out --share-on-network and --host."),
    (["--host", "10.0.0.7", "--share-on-network"], "error: Listening on 10.0.0.7 without a password"),
    (["--auth", "ann"], "error: The password must be given as USER:PASSWORD, with neither empty (the ':' is "
                        "missing). Pass --auth alice:a-long-password, or set ANYBODY_UI_AUTH=alice:a-long-password."),
    (["--auth", ":secret"], "(the user name is missing)"),
    (["--auth", "ann:"], "(the password is missing)"),
    (["--auth", ""], "(the ':' is missing)"),
], ids=["share without auth", "another host without auth", "no colon", "no user", "no password", "empty"])
def test_a_missing_or_malformed_password_is_one_line(monkeypatch, capsys, argv: list[str], line: str):
    monkeypatch.delenv(server.AUTH_ENVIRONMENT, raising=False)
    monkeypatch.setattr(server, "serve", lambda model, **options: pytest.fail("served without a good password"))
    assert main(["ui", *argv, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and line in err and "secret" not in err


def test_the_password_is_checked_before_gradio_or_torch_is_imported(tmp_path: Path):
    code = ("import sys; from anybody.interfaces.cli import main; code = main(['ui', '--share-on-network']); "
            "print(code, any(name in sys.modules for name in ('gradio', 'torch')))")
    environment = {key: value for key, value in os.environ.items() if key != server.AUTH_ENVIRONMENT}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                            env=environment)
    assert result.stdout.split() == ["2", "False"] and "without a password" in result.stderr


def test_upload_folders_whose_process_is_gone_are_removed(tmp_path: Path):
    """A killed app cannot clean up: the next start removes its folder, by the process number it holds."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a real process, ended and reaped: its number names no process now
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folders = {}
        for label, owner in (("dead", ended.pid), ("mine", os.getpid()), ("live", live.pid), ("unowned", None),
                             ("garbled", "12ab")):
            folders[label] = tmp_path / f"{server.WORK_PREFIX}{label}"
            (folders[label] / "upload").mkdir(parents=True)
            (folders[label] / "upload" / "me.jpg").write_bytes(b"a photo")
            if owner is not None:
                (folders[label] / server.OWNER_FILE).write_text(str(owner))
        (tmp_path / "other-dead").mkdir()
        (tmp_path / "other-dead" / server.OWNER_FILE).write_text(str(ended.pid))
        (tmp_path / f"{server.WORK_PREFIX}link").symlink_to(folders["dead"])
        assert server.remove_abandoned_work(tmp_path) == [folders["dead"]]
        kept = ["mine", "live", "unowned", "garbled", "link"]
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
            ["other-dead", *(f"{server.WORK_PREFIX}{label}" for label in kept)])
    finally:
        live.kill()
        live.wait()


def test_a_port_in_use_is_one_line_before_anything_loads(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: Port {port} on 127.0.0.1 cannot be used (") and "\n" not in err
    assert err.endswith(f"Pass another port (--port {port + 1}), or stop the program that holds it.")


def test_starting_the_cli_imports_neither_gradio_nor_the_hub():
    """Gradio is for `anybody ui` alone, and the hub client must not be imported before `ui` sets it offline
    (it reads HF_HUB_OFFLINE once, when imported)."""
    code = ("import sys; from anybody.interfaces.cli import build_parser; build_parser(); "
            "print(sorted(name for name in ('gradio', 'huggingface_hub') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_without_gradio_the_command_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "gradio" else real(name, *rest))
    assert main(["ui"]) == 2
    assert capsys.readouterr().err == ('error: The web app needs Gradio, which is not installed. Install it with: '
                                       'pip install "anybody[web]" (or pip install gradio).\n')
