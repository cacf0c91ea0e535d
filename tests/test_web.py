"""The page's files as the service serves them (no browser: tests/test_page.py drives one): the page
at /, a policy that keeps the browser on this origin, every script and style served from here with
the right type, nothing that reaches for another host, and no module importing a missing file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gsv_service.web.router import STATIC

FILES = sorted(p for p in STATIC.rglob("*") if p.is_file())
EXTERNAL = re.compile(r"""(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}""", re.I)


def test_root_is_the_page_with_a_same_origin_policy(client):
    r = client.get("/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/js/main.js">' in r.text
    csp = r.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "connect-src 'self'", "object-src 'none'"):
        assert directive in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/docs").status_code == 200  # Swagger stays where it was


def test_root_still_answers_json_to_a_client_that_asks_for_it(client):
    r = client.get("/", headers={"accept": "application/json"})
    assert r.status_code == 200 and r.json()["docs_url"] == "/docs"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(STATIC).as_posix())
def test_every_file_is_served_from_here_with_its_type(client, path: Path):
    rel = path.relative_to(STATIC).as_posix()
    r = client.get(f"/ui/{rel}")
    assert r.status_code == 200 and r.content == path.read_bytes()
    want = {".js": "javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}[path.suffix]
    assert want in r.headers["content-type"]
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    text = path.read_text(encoding="utf-8")
    assert not EXTERNAL.findall(text), f"{rel} refers to another host"
    if path.suffix == ".js":
        for target in re.findall(r"""^import .* from "(.+?)";""", text, re.M):
            assert target.startswith("./") and (path.parent / target).is_file(), f"{rel} imports {target}"
    if path.suffix in (".html", ".css"):
        for ref in re.findall(r"""(?:src|href)="(/[^"#]*)"|url\((/[^)]*)\)""", text):
            ref = next(x for x in ref if x)
            if ref.startswith("/ui/"):
                assert (STATIC / ref[4:]).is_file(), f"{rel} refers to missing {ref}"


def test_unknown_page_file_is_a_json_404(client):
    r = client.get("/ui/js/nope.js")
    assert r.status_code == 404 and r.json()["detail"]
    assert client.get("/ui/../gsv_service/app.py").status_code == 404
