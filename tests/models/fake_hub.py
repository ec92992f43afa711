"""A Hugging Face Hub on 127.0.0.1 serving repositories from folders, for download tests without a network.

It answers the requests huggingface_hub makes for `model_info`, `snapshot_download` and `hf_hub_download`:
`GET /api/models/<id>[/revision/<rev>]` (the repository and its files), `GET /api/models/<id>/tree/<rev>` (the
file list with sizes), and `HEAD`/`GET /<id>/resolve/<rev>/<path>` (a file's metadata and bytes, with Range
requests). An unknown repository gets the Hub's 404 with `X-Error-Code: RepoNotFound`. Every file request is
recorded, and a file can be set to break off half-way the next times it is sent, as a lost connection does.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.commits = {repo_id: hashlib.sha1(repo_id.encode()).hexdigest() for repo_id in repos}
        self.sent: list[str] = []  # "GET path" or "GET path bytes=N-" for every file request
        self.breaks: dict[str, int] = {}  # path -> how many more times to send only half of it
        self.url = ""

    def files(self, repo_id: str) -> list[str]:
        folder = self.repos[repo_id]
        return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())

    @contextmanager
    def serving(self) -> Iterator[FakeHub]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def _answer(self, request: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = unquote(urlparse(request.path).path)
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        repo_id = (api or tree or resolve).group(1) if (api or tree or resolve) else None
        if repo_id not in self.repos:
            self._send(request, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
        elif tree:
            entries = [{"type": "file", "path": name, "size": (self.repos[repo_id] / name).stat().st_size,
                        "oid": self._etag(repo_id, name)} for name in self.files(repo_id)]
            self._send(request, 200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, body)
        elif api:
            info = {"id": repo_id, "sha": self.commits[repo_id], "private": False, "tags": [],
                    "siblings": [{"rfilename": name} for name in self.files(repo_id)]}
            self._send(request, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        else:
            self._send_file(request, repo_id, resolve.group(3), body)

    def _etag(self, repo_id: str, name: str) -> str:
        return hashlib.sha1((self.repos[repo_id] / name).read_bytes()).hexdigest()

    def _send_file(self, request: BaseHTTPRequestHandler, repo_id: str, name: str, body: bool) -> None:
        file = self.repos[repo_id] / name
        if not file.is_file():
            self._send(request, 404, b"", {"X-Error-Code": "EntryNotFound"}, body)
            return
        data = file.read_bytes()
        start = int(re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", "bytes=0-")).group(1))
        headers = {"X-Repo-Commit": self.commits[repo_id], "ETag": f'"{self._etag(repo_id, name)}"'}
        if body:
            self.sent.append(f"GET {name}" + (f" bytes={start}-" if start else ""))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        status, part = (206 if start else 200), data[start:]
        if body and self.breaks.get(name, 0) > 0:
            self.breaks[name] -= 1
            request.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(part))}.items():
                request.send_header(key, value)
            request.end_headers()
            request.wfile.write(part[: len(part) // 2])  # then the connection drops
            request.wfile.flush()
            request.close_connection = True
            return
        self._send(request, status, part, headers, body)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        request.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            request.send_header(key, value)
        request.end_headers()
        if body:
            request.wfile.write(data)
