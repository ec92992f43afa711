"""Serving the web app: offline, on the loopback interface unless asked (and then only with a password),
uploads in a folder that goes away.

- `go_offline(work)` must run before Gradio is imported: no analytics, no version check, no Hub look-ups,
  and Gradio's uploads and cache in `work` (so `rmtree(work)` removes every upload).
- `parse_auth` and `require_auth` check the password before anything is loaded: another machine reaches
  the app only through Gradio's login, which guards the page and every API route alike.
- `running_app(studio, ...)` launches the page in a background thread and closes it on exit; `serve(...)`
  is the whole `anybody ui` command: folders, model, app, and cleaning up when it stops. A process killed
  before it could clean up leaves its folder; the next start of the app removes it (`remove_abandoned_work`:
  each folder holds the number of the process that owns it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anybody.errors import UsageError
from anybody.interfaces.web.limits import MAX_UPLOAD_MB

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
PORT = 7860  # Gradio's usual port
OUT = "anybody-output/web"  # drawings: one folder per request, as `anybody generate` writes them
AUTH_ENVIRONMENT = "ANYBODY_UI_AUTH"  # USER:PASSWORD, for those who keep the password off the command line
WORK_PREFIX = "anybody-ui-"  # the app's temporary folder: uploads and exports
OWNER_FILE = "owner.pid"  # in that folder: the number of the process that owns it
OFFLINE_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # no analytics and no version check
    "HF_HUB_OFFLINE": "1",  # neither Gradio nor the model loader asks the Hub anything
    "GRADIO_MCP_SERVER": "False",
}


def go_offline(work: str | os.PathLike[str]) -> None:
    """Set the environment that keeps Gradio off the network and its files in `work` (before importing it)."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    os.environ["GRADIO_TEMP_DIR"] = str(work)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_host(host: str | None, share_on_network: bool) -> str:
    """The address to listen on: the loopback interface unless the user explicitly shares on the network."""
    if host is None:
        return ALL_INTERFACES if share_on_network else LOOPBACK
    if not is_loopback(host) and not share_on_network:
        raise UsageError(f"Listening on {host} would let other machines reach the app",
                         "Add --share-on-network to do that on purpose, or leave out --host (127.0.0.1)")
    return host


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """`USER:PASSWORD` (`--auth`, or ANYBODY_UI_AUTH) as (user, password); None when not given. The password
    may hold ':' (the first one ends the user name); neither part may be empty. The refusal never repeats
    what was given: it may be the password."""
    if text is None:
        return None
    user, colon, password = text.partition(":")
    if not colon or not user.strip() or not password:
        missing = "the ':'" if not colon else "the user name" if not user.strip() else "the password"
        raise UsageError(f"The password must be given as USER:PASSWORD, with neither empty ({missing} is missing)",
                         f"Pass --auth alice:a-long-password, or set {AUTH_ENVIRONMENT}=alice:a-long-password")
    return user.strip(), password


def require_auth(host: str, auth: tuple[str, str] | None) -> None:
    """Refuse to listen beyond this machine without a password: anyone who reached the port could remove
    every identity and fill the disk."""
    if auth is None and not is_loopback(host):
        raise UsageError(f"Listening on {host} without a password would let anyone who reaches the port use the "
                         "app and remove every identity",
                         f"Add --auth USER:PASSWORD (or set {AUTH_ENVIRONMENT}), or leave out --share-on-network "
                         "and --host")


def require_gradio() -> None:
    """Gradio is an extra (`anybody[web]`): say how to get it instead of failing on the import."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise UsageError("The web app needs Gradio, which is not installed",
                         'Install it with: pip install "anybody[web]" (or pip install gradio)')


def require_free_port(host: str, port: int) -> None:
    """Refuse a port out of range or in use, before any model is loaded."""
    if not 1 <= port <= 65535:
        raise UsageError(f"The port must be between 1 and 65535 (got {port})", f"Pass --port {PORT}, for example")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(f"Port {port} on {host} cannot be used ({error.strerror or error})",
                             f"Pass another port (--port {port + 1}), or stop the program that holds it") from error


@contextlib.contextmanager
def running_app(studio: Any, host: str = LOOPBACK, port: int = PORT,
                auth: tuple[str, str] | None = None) -> Iterator[Any]:
    """The app, served from a background thread while the block runs; closed afterwards. With `auth`, the
    page and every API route ask for that user and password (Gradio's login); uploads are limited to the
    studio's `max_upload_mb`."""
    import gradio as gr

    from anybody.interfaces.web.app import CSS, build_app

    page = build_app(studio)
    page.queue(default_concurrency_limit=1)
    page.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True, quiet=True,
                inbrowser=False, max_file_size=f"{studio.max_upload_mb:g}mb", allowed_paths=[str(studio.out)],
                theme=gr.themes.Default(), css=CSS, mcp_server=False, ssr_mode=False, footer_links=["api"],
                run_history=False, auth=[auth] if auth else None,
                auth_message="anybody: ask whoever started this app for its user name and password" if auth else None)
    try:
        yield page
    finally:
        page.close()


def serve(model: str, *, host: str, port: int, library: str | None = None, out: str = OUT,
          max_upload_mb: float = MAX_UPLOAD_MB, device: str | None = None, dtype: str | None = None,
          auth: tuple[str, str] | None = None, controlnets: list[str] | None = None) -> None:
    """`anybody ui`: load the model, serve the app until Ctrl-C, then remove every upload. `controlnets`: those
    the Draw tab offers besides the cached ones (`Studio.controlnet_choices`)."""
    remove_abandoned_work()
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    try:
        (work / OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
        go_offline(work)
        from anybody.interfaces.web.studio import Studio

        studio = Studio(model, work=work, out=Path(out).resolve(), library=library, device=device, dtype=dtype,
                        max_upload_mb=max_upload_mb, controlnets=controlnets or [])
        print(f"Loading {model}…", flush=True)
        studio.pipe  # noqa: B018 (a wrong model is one line here, before anything is served)
        with running_app(studio, host, port, auth) as page:
            print(f"anybody is running at http://{'localhost' if host == LOOPBACK else host}:{port}/ "
                  "(Ctrl-C stops it)", flush=True)
            page.block_thread()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_abandoned_work(folder: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the app's temporary folders (in `folder`, default the system's temporary folder) that belong to
    this user and whose owning process is gone: what an app killed before it could clean up left behind
    (uploaded photos among them). A folder without an owner file, or whose owner is alive or cannot be
    told, is left alone; so is every folder where processes cannot be probed (not POSIX). Returns the
    folders removed."""
    if os.name != "posix":
        return []
    removed = []
    for candidate in Path(folder or tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        try:
            status = candidate.lstat()
            owner = int((candidate / OWNER_FILE).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if candidate.is_dir() and not candidate.is_symlink() and status.st_uid == os.getuid() and _gone(owner):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _gone(pid: int) -> bool:
    """Whether no process has this number (signal 0 only asks)."""
    if not 0 < pid < 2**31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        pass
    return False
