"""A Hugging Face Hub-compatible HTTP server on 127.0.0.1 for tests (set ``HF_ENDPOINT`` to its url).

Reading: model info at a revision (per-file size, git blob id, LFS sha256), file HEAD/GET on
``/resolve/`` with ETag, size and HTTP Range. Writing (what ``create_repo``/``upload_folder`` use without
Xet): repo creation, the preupload endpoint, the LFS batch API with basic PUT transfers, and the NDJSON
commit endpoint. Faults: a connection dropped mid-file, 5xx answers, corrupted bytes, gated repositories
that need a token, and ``tamper`` to change a stored file behind the uploader's back. Every request is
logged for assertions.
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
    "corrupt" (flip a byte of the body), "hang" (wait for ``FakeHub.release`` before handling: a client killed
    mid-request), "hang-after" (a commit: applied, then no answer until released: killed after it landed).
    ``times``: how many matching requests (None = always).
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
    def __init__(self, write_tokens: set[str] | None = None) -> None:
        self.write_tokens = set(write_tokens or ())
        self.lfs_store: dict[str, bytes] = {}
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self.release = threading.Event()  # ends every "hang" fault
        self.hanging = threading.Event()  # set while a request is held by one

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

    def tamper(self, repo_id: str, filename: str, data: bytes, branch: str = "main") -> str:
        """Replace a file at the branch head (a new commit), as a compromised mirror would."""
        repo = self.repos[repo_id]
        files = dict(repo.commits[repo.refs[branch]])
        files[filename] = data
        return self.add_commit(repo_id, files, branch=branch)

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

    def hold(self) -> None:
        """Hold the calling request (a "hang" fault) until ``release`` is set or a minute has passed."""
        self.hanging.set()
        self.release.wait(60)

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

    def do_POST(self) -> None:
        self._log()
        path = urlparse(self.path).path
        body = self._body()
        fault = self.server_hub.take_fault("POST", path)
        if fault and fault.kind == "status":
            self._error(fault.code, "Internal", f"injected {fault.code}")
            return
        if fault and fault.kind == "hang":
            self.server_hub.hold()
            self.close_connection = True
            return
        if path == "/api/validate-yaml":
            self._validate_yaml(json.loads(body or b"{}"))
            return
        if path == "/api/repos/create":
            self._create_repo(json.loads(body or b"{}"))
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path)
        if m:
            self._preupload(m.group(1), json.loads(body))
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m:
            self._lfs_batch(m.group(1), json.loads(body))
            return
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path)
        if m:
            self._commit(m.group(1), unquote(m.group(2)), body, hang=bool(fault and fault.kind == "hang-after"))
            return
        self._error(404, "EntryNotFound", f"no route for POST {path}")

    def do_PUT(self) -> None:
        self._log()
        path = urlparse(self.path).path
        body = self._body()
        fault = self.server_hub.take_fault("PUT", path)
        if fault and fault.kind == "hang":
            self.server_hub.hold()
            self.close_connection = True
            return
        m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if not m:
            self._error(404, "EntryNotFound", f"no route for PUT {path}")
            return
        if hashlib.sha256(body).hexdigest() != m.group(1):
            self._error(400, "BadRequest", "sha256 of the uploaded content does not match its oid")
            return
        self.server_hub.lfs_store[m.group(1)] = body
        self._send(200, b"{}", {"Content-Type": "application/json"})

    # -------------------------------------------------------------- writing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _can_write(self) -> bool:
        if self._token() in self.server_hub.write_tokens:
            return True
        self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        return False

    def _create_repo(self, payload: dict) -> None:
        if not self._can_write():
            return
        repo_id = f"{payload.get('organization')}/{payload['name']}" if payload.get("organization") else payload["name"]
        if repo_id in self.server_hub.repos:  # the Hub names the existing repo's url (create_repo(exist_ok) reads it)
            message = "You already created this model repo"
            body = json.dumps({"error": message, "url": f"{self.server_hub.url}/{repo_id}"}).encode()
            self._send(409, body, {"Content-Type": "application/json", "X-Error-Code": "Conflict",
                                   "X-Error-Message": message})  # fmt: skip
            return
        self.server_hub.add_commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs\n"})
        self._send(
            200, json.dumps({"url": f"{self.server_hub.url}/{repo_id}"}).encode(), {"Content-Type": "application/json"}
        )

    def _validate_yaml(self, payload: dict) -> None:
        """The Hub checks a model card's YAML front matter before a commit that changes README.md."""
        import yaml

        errors = []
        content = payload.get("content", "")
        front = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(front.group(1)) if front else {}
            if meta is not None and not isinstance(meta, dict):
                errors.append({"message": "metadata must be a mapping"})
        except yaml.YAMLError as exc:
            errors.append({"message": f"invalid YAML: {exc}"})
        self._send(
            200 if not errors else 400,
            json.dumps({"errors": errors, "warnings": []}).encode(),
            {"Content-Type": "application/json"},
        )

    def _preupload(self, repo_id: str, payload: dict) -> None:
        if not self._can_write() or self._repo_or_error(repo_id) is None:
            return
        files = [
            {"path": f["path"], "uploadMode": "lfs" if (is_lfs(f["path"]) or f["size"] > 1_000_000) else "regular",
             "shouldIgnore": False, "oid": None}
            for f in payload["files"]
        ]  # fmt: skip
        self._send(200, json.dumps({"files": files, "commitOid": None}).encode(), {"Content-Type": "application/json"})

    def _lfs_batch(self, repo_id: str, payload: dict) -> None:
        if not self._can_write():
            return
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.server_hub.lfs_store:
                entry["actions"] = {"upload": {"href": f"{self.server_hub.url}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _commit(self, repo_id: str, branch: str, body: bytes, *, hang: bool = False) -> None:
        import base64

        if not self._can_write():
            return
        repo = self._repo_or_error(repo_id)
        if repo is None:
            return
        files = dict(repo.commits.get(repo.refs.get(branch, ""), {}))
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header" and value.get("parentCommit") not in (None, repo.refs.get(branch)):
                self._error(412, "PreconditionFailed", "A commit has happened since. Please refresh and try again.")
                return
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.server_hub.lfs_store.get(value["oid"])
                if data is None:
                    self._error(422, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                    return
                files[value["path"]] = data
            elif key == "deletedFile":
                files.pop(value["path"], None)
        sha = self.server_hub.add_commit(repo_id, files, branch=branch)
        if hang:
            self.server_hub.hold()
            self.close_connection = True
            return
        url = f"{self.server_hub.url}/{repo_id}/commit/{sha}"
        self._send(
            200,
            json.dumps({"commitUrl": url, "commitOid": sha, "pullRequestUrl": None}).encode(),
            {"Content-Type": "application/json"},
        )

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
