"""A tiny Hugging Face hub on 127.0.0.1, for download tests without the internet.

It serves model folders in the hub's URL layout, with the headers and error codes that
huggingface_hub 2.x reads (file_download.get_hf_file_metadata, http_get, utils/_http.hf_raise_for_status,
hf_api.model_info / list_repo_tree):

    GET  /api/models/ORG/NAME[/revision/REV]   {"id", "sha", "siblings": [{"rfilename", "size", ...}]}
    GET  /api/models/ORG/NAME/tree/REV[/DIR]    [{"type": "file", "path", "size", "oid", "lfs"?}]
    HEAD /ORG/NAME/resolve/REV/PATH             ETag, X-Repo-Commit, Content-Length, Accept-Ranges
    GET  /ORG/NAME/resolve/REV/PATH             the bytes; `Range: bytes=A-[B]` answers 206 + Content-Range

Errors as the hub sends them: an unknown repo 401 + `X-Error-Code: RepoNotFound`; a gated repo's
files 401 (no token) or 403 (wrong token) + `X-Error-Code: GatedRepo`, its metadata stays public as
on the hub; a missing file 404 + `EntryNotFound` (with X-Repo-Commit, which the client caches);
an unknown revision 404 + `RevisionNotFound`.

Faults for the resume tests: `server.fault(repo, path, cut_after=N)` makes the next GET of that
file stop after N body bytes and drop the connection; `status=503` makes it answer that status.
Every request lands in `server.log`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

# Files the hub stores in LFS: their ETag is the sha256 of the content, as on the hub.
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pth", ".pt", ".onnx", ".h5", ".msgpack")
CHUNK = 1 << 16


@dataclass
class Repo:
    repo_id: str
    files: dict[str, bytes]
    gated_token: Optional[str] = None  # set: the files need `Authorization: Bearer <token>`
    sha: str = ""

    def __post_init__(self):
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        self.sha = digest.hexdigest()

    def etag(self, path: str) -> str:
        data = self.files[path]
        if path.endswith(LFS_SUFFIXES):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)


@dataclass
class Request:
    method: str
    path: str
    range: Optional[str]
    authorization: Optional[str]
    status: int = 0


@dataclass
class HubServer:
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    faults: dict[tuple[str, str], deque] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: Optional[ThreadingHTTPServer] = None

    # -- setup
    def add_folder(self, repo_id: str, folder: Path, gated_token: Optional[str] = None,
                   extra: Optional[dict[str, bytes]] = None) -> Repo:
        """Serve every file under `folder` (plus `extra` {path: bytes}) as the repo `repo_id`."""
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        files.update(extra or {})
        return self.add_files(repo_id, files, gated_token)

    def add_files(self, repo_id: str, files: dict[str, bytes], gated_token: Optional[str] = None) -> Repo:
        repo = Repo(repo_id, dict(files), gated_token)
        self.repos[repo_id] = repo
        return repo

    def fault(self, repo_id: str, path: str, cut_after: Optional[int] = None, status: Optional[int] = None) -> None:
        """The next GET of `path` either stops after `cut_after` body bytes or answers `status`."""
        self.faults[(repo_id, path)].append({"cut_after": cut_after, "status": status})

    # -- queries
    def requests(self, method: Optional[str] = None, endswith: Optional[str] = None) -> list[Request]:
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method)
                    and (endswith is None or r.path.endswith(endswith))]

    # -- life
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def log_message(self, *args) -> None:  # quiet: the test reads hub.log instead
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- routing
    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        record = Request(self.command, path, self.headers.get("Range"), self.headers.get("Authorization"))
        with self.hub.lock:
            self.hub.log.append(record)
        record.status = self._route(path, head)

    def _route(self, path: str, head: bool) -> int:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            return self._api(parts[2] + "/" + parts[3], parts[4:])
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]), head)
        return self._error(404, "NotFound", "no such route")

    def _api(self, repo_id: str, rest: list[str]) -> int:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        if not rest:
            return self._json(self._info(repo))
        if rest[0] == "revision" and len(rest) == 2:
            return self._json(self._info(repo)) if self._known_revision(repo, rest[1]) else self._no_revision()
        if rest[0] == "tree" and len(rest) >= 2:
            if not self._known_revision(repo, rest[1]):
                return self._no_revision()
            return self._json(self._tree(repo, "/".join(rest[2:])))
        return self._error(404, "NotFound", "no such route")

    # -- api bodies
    def _info(self, repo: Repo) -> dict:
        return {"_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.sha,
                "private": False, "gated": "manual" if repo.gated_token else False, "disabled": False,
                "tags": [], "downloads": 0, "likes": 0, "siblings": [self._sibling(repo, p) for p in sorted(repo.files)]}

    def _sibling(self, repo: Repo, path: str) -> dict:
        size = len(repo.files[path])
        sibling = {"rfilename": path, "size": size, "blobId": repo.etag(path)}
        if repo.is_lfs(path):
            sibling["lfs"] = {"sha256": repo.etag(path), "size": size, "pointerSize": 134}
        return sibling

    def _tree(self, repo: Repo, under: str) -> list[dict]:
        entries = []
        for path in sorted(repo.files):
            if under and not path.startswith(under.rstrip("/") + "/"):
                continue
            size = len(repo.files[path])
            entry = {"type": "file", "path": path, "size": size,
                     "oid": hashlib.sha1(b"blob %d\0" % size + repo.files[path]).hexdigest()}
            if repo.is_lfs(path):
                entry["lfs"] = {"oid": repo.etag(path), "size": size, "pointerSize": 134}
            entries.append(entry)
        return entries

    @staticmethod
    def _known_revision(repo: Repo, revision: str) -> bool:
        return revision in ("main", repo.sha)

    def _no_revision(self) -> int:
        return self._error(404, "RevisionNotFound", "Invalid rev id")

    # -- files
    def _file(self, repo_id: str, revision: str, path: str, head: bool) -> int:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        if repo.gated_token and self.headers.get("Authorization") != f"Bearer {repo.gated_token}":
            status = 403 if self.headers.get("Authorization") else 401
            return self._error(status, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the authorized list.")
        if not self._known_revision(repo, revision):
            return self._no_revision()
        if path not in repo.files:
            return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": repo.sha})
        fault = None if head else self._next_fault(repo_id, path)
        if fault and fault["status"]:
            return self._error(fault["status"], "ServerError", "injected failure")
        return self._send_file(repo, path, head, fault["cut_after"] if fault else None)

    def _next_fault(self, repo_id: str, path: str) -> Optional[dict]:
        with self.hub.lock:
            queue = self.hub.faults.get((repo_id, path))
            return queue.popleft() if queue else None

    def _send_file(self, repo: Repo, path: str, head: bool, cut_after: Optional[int]) -> int:
        data = repo.files[path]
        start, end, status = 0, len(data) - 1, 200
        if self.headers.get("Range"):
            bounds = _parse_range(self.headers["Range"], len(data))
            if bounds is None:
                return self._error(416, "RangeNotSatisfiable", "bad range", {"Content-Range": f"bytes */{len(data)}"})
            start, end, status = *bounds, 206
        headers = {"ETag": f'"{repo.etag(path)}"', "X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream", "Content-Length": str(end - start + 1)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._head(status, headers)
        if not head:
            self._body(data[start:end + 1], cut_after)
        return status

    def _body(self, body: bytes, cut_after: Optional[int]) -> None:
        limit = len(body) if cut_after is None else min(cut_after, len(body))
        for offset in range(0, limit, CHUNK):
            self.wfile.write(body[offset:min(offset + CHUNK, limit)])
        if limit < len(body):
            # Fewer bytes than Content-Length, then the socket closes: a dropped connection.
            self.wfile.flush()
            self.close_connection = True

    # -- plumbing
    def _head(self, status: int, headers: dict) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, payload) -> int:
        body = json.dumps(payload).encode()
        self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        if self.command != "HEAD":
            self.wfile.write(body)
        return 200

    def _error(self, status: int, code: str, message: str, extra: Optional[dict] = None) -> int:
        body = json.dumps({"error": message}).encode()
        self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(body)),
                            "X-Error-Code": code, "X-Error-Message": message, **(extra or {})})
        if self.command != "HEAD":
            self.wfile.write(body)
        return status


def _parse_range(header: str, size: int) -> Optional[tuple[int, int]]:
    """`bytes=A-` or `bytes=A-B` (the forms huggingface_hub sends) as inclusive bounds."""
    unit, _, spec = header.partition("=")
    first, _, last = spec.partition("-")
    if unit.strip() != "bytes" or not first.strip().isdigit():
        return None
    start = int(first)
    end = int(last) if last.strip().isdigit() else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
