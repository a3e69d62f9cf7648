"""A Hugging Face Hub-compatible HTTP server on 127.0.0.1 for tests (set ``HF_ENDPOINT`` to its url).

It answers the endpoints huggingface_hub uses to read a model repository — model info at a revision
(with per-file size, git blob id and LFS sha256), file HEAD/GET on ``/resolve/`` with ETag, size and
HTTP Range — and can inject faults: a connection dropped mid-file, 5xx answers, corrupted bytes, and
gated repositories that need a token. Every request is logged for assertions.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

LFS_PATTERNS = ("*.safetensors", "*.bin", "*.onnx", "*.onnx.data", "*.xml.bin")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def is_lfs(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(base, p) for p in LFS_PATTERNS) or base.endswith(".bin")


@dataclass
class Fault:
    """Inject a fault into matching requests.

    kind: "drop" (send headers + ``after`` bytes, then close), "status" (answer ``code``),
    "corrupt" (flip a byte of the body). ``times``: how many matching requests (None = always).
    """

    kind: str
    path_glob: str = "*"
    method: str = "*"
    times: int | None = 1
    after: int = 0
    code: int = 503
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method in ("*", method)) and fnmatch.fnmatch(path, self.path_glob)


@dataclass
class Repo:
    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    allowed_tokens: set[str] = field(default_factory=set)
    card: dict = field(default_factory=dict)


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- repo management
    def add_commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main", **repo_kw) -> str:
        repo = self.repos.get(repo_id) or Repo(repo_id, **repo_kw)
        self.repos[repo_id] = repo
        parent = repo.refs.get(branch, "")
        h = hashlib.sha1(parent.encode(), usedforsecurity=False)
        for name in sorted(files):
            h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        sha = h.hexdigest()
        repo.commits[sha] = dict(files)
        repo.refs[branch] = sha
        return sha

    # -------------------------------------------------------------- server
    @property
    def url(self) -> str:
        if self._server is not None:
            host, port = self._server.server_address[:2]
            self._url = f"http://{host}:{port}"
        return self._url

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections (clients see the Hub disappear)."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            with self._lock:
                conns, self._connections = self._connections, []
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(method, path):
                    f.hits += 1
                    return f
        return None

    def resolve(self, repo: Repo, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in repo.commits:
            return rev
        return repo.refs.get(rev)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: FakeHub

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server_hub._lock:
            self.server_hub._connections.append(self.connection)

    # -------------------------------------------------------------- plumbing
    def _log(self) -> None:
        with self.server_hub._lock:
            self.server_hub.requests.append(
                {
                    "method": self.command,
                    "path": urlparse(self.path).path,
                    "range": self.headers.get("Range"),
                    "auth": bool(self.headers.get("Authorization")),
                }
            )

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, *, head: bool = False) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, code: int, error_code: str, message: str, *, head: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            code,
            body,
            {"Content-Type": "application/json", "X-Error-Code": error_code, "X-Error-Message": message},
            head=head,
        )

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _repo_or_error(self, repo_id: str, *, head: bool = False) -> Repo | None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        if repo.gated:
            token = self._token()
            if token is None:
                self._error(
                    401, "GatedRepo", "Access to this repo is restricted. You must be authenticated.", head=head
                )
                return None
            if token not in repo.allowed_tokens:
                self._error(
                    403,
                    "GatedRepo",
                    "Access to this repo is restricted and you are not in the authorized list.",
                    head=head,
                )
                return None
        return repo

    # -------------------------------------------------------------- routes
    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def _route(self, *, head: bool) -> None:
        self._log()
        parsed = urlparse(self.path)
        path = parsed.path
        fault = self.server_hub.take_fault(self.command, path)
        if fault and fault.kind == "status":
            self._error(fault.code, "Internal", f"injected {fault.code}", head=head)
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            self._model_info(m.group(1), m.group(2) or "main", parse_qs(parsed.query), head=head)
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            self._resolve(m.group(1), m.group(2), unquote(m.group(3)), fault, head=head)
            return
        self._error(404, "EntryNotFound", f"no route for {path}", head=head)

    def _model_info(self, repo_id: str, rev: str, query: dict, *, head: bool) -> None:
        repo = self._repo_or_error(repo_id, head=head)
        if repo is None:
            return
        sha = self.server_hub.resolve(repo, rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
            return
        siblings = []
        for name, data in sorted(repo.commits[sha].items()):
            sib: dict = {"rfilename": name}
            if query.get("blobs"):
                sib["size"] = len(data)
                sib["blobId"] = git_blob_sha1(data)
                if is_lfs(name):
                    sib["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(sib)
        body = {
            "_id": repo_id,
            "id": repo_id,
            "modelId": repo_id,
            "sha": sha,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "tags": [],
            "siblings": siblings,
            "cardData": repo.card,
        }
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head=head)

    def _resolve(self, repo_id: str, rev: str, filename: str, fault: Fault | None, *, head: bool) -> None:
        repo = self._repo_or_error(repo_id, head=head)
        if repo is None:
            return
        sha = self.server_hub.resolve(repo, rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
            return
        files = repo.commits[sha]
        if filename not in files:
            self._error(404, "EntryNotFound", f"{filename} does not exist at {sha}", head=head)
            return
        data = files[filename]
        etag = hashlib.sha256(data).hexdigest() if is_lfs(filename) else git_blob_sha1(data)
        if fault and fault.kind == "corrupt" and not head:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if is_lfs(filename):
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        start = 0
        rng = self.headers.get("Range")
        code = 200
        if rng and not head:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data_out = data[start : end + 1]
                code = 206
        if code == 200:
            data_out = data
        headers["Content-Length"] = str(len(data_out))
        if fault and fault.kind == "drop" and not head:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data_out[: fault.after])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(code, data_out, headers, head=head)
