"""Serving the web app: offline, on the loopback interface unless asked, uploads in a folder that goes away.

- `go_offline(work)` must run before Gradio is imported: no analytics, no version check, no Hub look-ups,
  and Gradio's uploads and cache in `work` (so `rmtree(work)` removes every upload).
- `running_app(studio, ...)` launches the page in a background thread and closes it on exit; `serve(...)`
  is the whole `anybody ui` command: folders, model, app, and cleaning up when it stops.
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

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
PORT = 7860  # Gradio's usual port
MAX_UPLOAD_MB = 64  # a photo of 64 megapixels (the photo limit) is well under it as JPEG; embeddings are <= 32 MB
OUT = "anybody-output/web"  # drawings: one folder per request, as `anybody generate` writes them
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
                max_upload_mb: float = MAX_UPLOAD_MB) -> Iterator[Any]:
    """The app, served from a background thread while the block runs; closed afterwards."""
    import gradio as gr

    from anybody.interfaces.web.app import CSS, build_app

    page = build_app(studio)
    page.queue(default_concurrency_limit=1)
    page.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True, quiet=True,
                inbrowser=False, max_file_size=f"{max_upload_mb:g}mb", allowed_paths=[str(studio.out)],
                theme=gr.themes.Default(), css=CSS, mcp_server=False, ssr_mode=False, footer_links=["api"],
                run_history=False)
    try:
        yield page
    finally:
        page.close()


def serve(model: str, *, host: str, port: int, library: str | None = None, out: str = OUT,
          max_upload_mb: float = MAX_UPLOAD_MB, device: str | None = None, dtype: str | None = None) -> None:
    """`anybody ui`: load the model, serve the app until Ctrl-C, then remove every upload."""
    work = Path(tempfile.mkdtemp(prefix="anybody-ui-"))
    try:
        go_offline(work)
        from anybody.interfaces.web.studio import Studio

        studio = Studio(model, work=work, out=Path(out).resolve(), library=library, device=device, dtype=dtype)
        print(f"Loading {model}…", flush=True)
        studio.pipe  # noqa: B018 (a wrong model is one line here, before anything is served)
        with running_app(studio, host, port, max_upload_mb) as page:
            print(f"anybody is running at http://{'localhost' if host == LOOPBACK else host}:{port}/ "
                  "(Ctrl-C stops it)", flush=True)
            page.block_thread()
    finally:
        shutil.rmtree(work, ignore_errors=True)
