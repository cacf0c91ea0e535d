"""A stand-in for the Hugging Face Hub on 127.0.0.1, enough for huggingface_hub's download client:
HEAD/GET /{repo}/resolve/{rev}/{path} with the hub's headers (X-Repo-Commit, ETag, X-Linked-Etag and
X-Linked-Size for LFS files, which redirect to a /cdn/ URL like the hub's CDN), Range requests (206),
GET /api/models/{repo}/tree/{rev}/{path} and POST /api/models/{repo}/paths-info/{rev}.

Knobs for tests: `cut_once` answers one GET of a file with only its first N bytes and then drops
the connection; `fail_next` answers the next GETs of a file (after a pending cut) with these
statuses; `wrong_sha` advertises a wrong sha256 for a file. Every request is logged in `requests`."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True  # LFS files redirect to the CDN and carry X-Linked-Etag = sha256

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Logged:
    method: str
    path: str          # unquoted, without the query
    range: str | None  # the Range header, if any


@dataclass
class FakeHub:
    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)
    cut_once: dict[tuple[str, str], int] = field(default_factory=dict)
    fail_next: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    wrong_sha: set[tuple[str, str]] = field(default_factory=set)
    url: str = ""

    def add(self, repo: str, path: str, data: bytes, lfs: bool | None = None) -> HubFile:
        f = HubFile(data, lfs=len(data) >= 10_000 if lfs is None else lfs)
        self.repos.setdefault(repo, {})[path] = f
        return f

    def advertised_sha(self, repo: str, path: str) -> str:
        f = self.repos[repo][path]
        return hashlib.sha256(b"not " + f.data).hexdigest() if (repo, path) in self.wrong_sha else f.sha256

    def entry(self, repo: str, path: str) -> dict:
        """What the hub's tree and paths-info APIs say about a file."""
        f = self.repos[repo][path]
        out = {"type": "file", "oid": git_blob_id(f.data), "size": len(f.data), "path": path}
        if f.lfs:
            out["lfs"] = {"oid": self.advertised_sha(repo, path), "size": len(f.data), "pointerSize": 134}
        return out

    def file_gets(self) -> list[Logged]:
        """GETs that transfer file content (resolve or CDN), not API calls."""
        return [r for r in self.requests if r.method == "GET" and not r.path.startswith("/api/")]

    def start(self) -> FakeHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_CDN = re.compile(r"^/cdn/([^/]+/[^/]+)/(.+)$")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$")
_PATHS_INFO = re.compile(r"^/api/models/([^/]+/[^/]+)/paths-info/([^/]+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _path(self) -> str:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(Logged(self.command, path, self.headers.get("Range")))
            return path

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, obj) -> None:
            self._send(200, {"Content-Type": "application/json"}, json.dumps(obj).encode())

        def _missing(self, repo: str, path: str) -> None:
            code = "RepoNotFound" if repo not in hub.repos else "EntryNotFound"
            self._send(404, {"X-Error-Code": code, "X-Error-Message": f"{repo}: no {path}"})

        def do_HEAD(self) -> None:
            self._route(self._path())

        def do_GET(self) -> None:
            self._route(self._path())

        def do_POST(self) -> None:
            path = self._path()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            m = _PATHS_INFO.match(path)
            if not m or m[1] not in hub.repos:
                return self._missing(m[1] if m else "?", path)
            files = hub.repos[m[1]]
            out = []
            for p in parse_qs(body).get("paths", []):
                if p in files:
                    out.append(hub.entry(m[1], p))
                elif any(f.startswith(p.rstrip("/") + "/") for f in files):
                    out.append({"type": "directory", "oid": "f" * 40, "path": p})
            self._json(out)

        def _route(self, path: str) -> None:
            if m := _TREE.match(path):
                repo, prefix = m[1], (m[3] or "").strip("/")
                if repo not in hub.repos:
                    return self._missing(repo, prefix)
                names = sorted(f for f in hub.repos[repo] if not prefix or f.startswith(prefix + "/"))
                if not names:
                    return self._missing(repo, prefix)
                return self._json([hub.entry(repo, f) for f in names])
            if m := _RESOLVE.match(path):
                return self._resolve(m[1], m[3])
            if m := _CDN.match(path):
                return self._content(m[1], m[2])
            self._send(404, {})

        def _resolve(self, repo: str, path: str) -> None:
            f = hub.repos.get(repo, {}).get(path)
            if f is None:
                return self._missing(repo, path)
            if not f.lfs:
                return self._content(repo, path, {"ETag": f'"{git_blob_id(f.data)}"', "X-Repo-Commit": COMMIT})
            sha = hub.advertised_sha(repo, path)
            self._send(302, {"Location": f"{hub.url}/cdn/{repo}/{path}", "X-Repo-Commit": COMMIT,
                             "ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(f.data))})

        def _content(self, repo: str, path: str, extra: dict[str, str] | None = None) -> None:
            f = hub.repos.get(repo, {}).get(path)
            if f is None:
                return self._missing(repo, path)
            key = (repo, path)
            if self.command == "GET" and key not in hub.cut_once and hub.fail_next.get(key):
                return self._send(hub.fail_next[key].pop(0), {"X-Error-Message": "fake hub: told to fail"})
            data, status, headers = f.data, 200, dict(extra or {})
            rng = _RANGE.match(self.headers.get("Range") or "")
            if rng:
                start = int(rng[1])
                end = int(rng[2]) if rng[2] else len(f.data) - 1
                if start >= len(f.data):
                    return self._send(416, {"Content-Range": f"bytes */{len(f.data)}"})
                data, status = f.data[start:end + 1], 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(f.data)}"
            headers["Accept-Ranges"] = "bytes"
            cut = hub.cut_once.pop(key, None) if self.command == "GET" else None
            if cut is None:
                return self._send(status, headers, data)
            # Promise the whole body, send part of it, drop the connection: a broken download.
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True

    return Handler
