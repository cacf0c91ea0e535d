"""Uploads and downloads: streaming, limits, safe names, path traversal, lookup order."""

from __future__ import annotations

import io

import pytest

from tests.conftest import make_settings
from tests.test_api_tasks import create


def raw_upload(client, tid, filename: bytes, content: bytes = b"data"):
    """A hand-made multipart body, so the file name reaches the server byte for byte."""
    body = (b'--B0\r\nContent-Disposition: form-data; name="file"; filename="' + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + content + b"\r\n--B0--\r\n")
    return client.post(f"/api/v1/task/{tid}/files/upload", content=body,
                       headers={"content-type": "multipart/form-data; boundary=B0"})


def up(client, tid, *files, field="file", params=None):
    return client.post(f"/api/v1/task/{tid}/files/upload", params=params,
                       files=[(field, f) for f in files])


def test_upload_single_and_many_then_list_and_download(client, settings):
    tid = create(client)["task_id"]
    r = up(client, tid, ("a.wav", b"RIFF1234", "audio/wav"))
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["filename"] == "a.wav" and j["size"] == 8 and j["folder"] == "input_audio"
    r = up(client, tid, ("b.mp3", b"x" * 1000, "audio/mpeg"), ("c.list", b"a|b|ZH|c\n", "text/plain"),
           field="files")
    assert r.status_code == 200
    assert {(f["filename"], f["folder"], f["size"]) for f in r.json()["files"]} == {
        ("b.mp3", "input_audio", 1000), ("c.list", "input_transcripts", 9)}
    root = settings.task_root / tid
    assert (root / "input_audio" / "a.wav").read_bytes() == b"RIFF1234"
    assert (root / "input_transcripts" / "c.list").exists()
    listing = client.get(f"/api/v1/task/{tid}/files").json()["folders"]
    assert [f["name"] for f in listing["input_audio"]] == ["a.wav", "b.mp3"]
    assert client.get(f"/api/v1/task/{tid}/files/download/a.wav").content == b"RIFF1234"
    assert client.get(f"/api/v1/task/{tid}/files/download/input_audio/b.mp3").content == b"x" * 1000
    assert not any(p.name.startswith(".upload-") for p in (root / "input_audio").iterdir())


def test_client_path_in_filename_keeps_only_basename(client, settings):
    tid = create(client)["task_id"]
    r = up(client, tid, ("../../../etc/evil.wav", b"data", "audio/wav"))
    assert r.status_code == 200 and r.json()["filename"] == "evil.wav"
    assert (settings.task_root / tid / "input_audio" / "evil.wav").exists()
    r = up(client, tid, ("C:\\Users\\me\\take 1.wav", b"data", "audio/wav"))
    assert r.json()["filename"] == "take 1.wav"


@pytest.mark.parametrize("name,code", [
    ("notes.exe", 415), ("noext", 415), ("..", 400), (".hidden.wav", 400), ("a\x00b.wav", 400),
    ("e\u0301.wav", 400), ("x" * 300 + ".wav", 400), ("", 400),
])
def test_bad_upload_names_are_refused_and_nothing_is_stored(client, settings, name, code):
    tid = create(client)["task_id"]
    up(client, tid, ("keep.wav", b"precious", "audio/wav"))
    r = raw_upload(client, tid, name.encode())
    assert r.status_code == code, r.text
    assert r.status_code != 500 and "detail" in r.json()
    files = sorted(p.name for p in (settings.task_root / tid / "input_audio").iterdir())
    assert files == ["keep.wav"]
    assert (settings.task_root / tid / "input_audio" / "keep.wav").read_bytes() == b"precious"


def test_wrong_field_and_non_multipart_are_4xx(client):
    tid = create(client)["task_id"]
    assert up(client, tid, ("a.wav", b"x", "audio/wav"), field="upload").status_code == 400
    r = client.post(f"/api/v1/task/{tid}/files/upload", content=b"raw", headers={"content-type": "audio/wav"})
    assert r.status_code == 415
    r = client.post(f"/api/v1/task/{tid}/files/upload", data={"folder": "input_audio"})
    assert r.status_code in (400, 415)
    assert up(client, tid, ("a.wav", b"x", "audio/wav"), params={"folder": "weights"}).status_code == 400
    assert up(client, tid, ("a.wav", b"x", "audio/wav"), params={"folder": "input_transcripts"}).status_code == 415


def test_upload_over_limit_is_413_and_leaves_nothing(tmp_path, db_url):
    from fastapi.testclient import TestClient

    from gsv_service.app import create_app
    settings = make_settings(tmp_path, db_url, max_upload_mb=1)
    with TestClient(create_app(settings)) as client:
        tid = create(client)["task_id"]
        up(client, tid, ("keep.wav", b"precious", "audio/wav"))
        big = io.BytesIO(b"\0" * (3 * 1024 * 1024))
        r = up(client, tid, ("big.wav", big, "audio/wav"))
        assert r.status_code == 413 and "GSV_MAX_UPLOAD_MB" in r.json()["detail"]
        # without Content-Length (chunked), the streaming counter stops it too
        def gen():
            boundary = b"XyZ"
            yield b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big2.wav\"\r\n\r\n"
            for _ in range(3):
                yield b"\0" * (1024 * 1024)
            yield b"\r\n--" + boundary + b"--\r\n"
        r = client.post(f"/api/v1/task/{tid}/files/upload", content=gen(),
                        headers={"content-type": "multipart/form-data; boundary=XyZ"})
        assert r.status_code == 413
        names = sorted(p.name for p in (settings.task_root / tid / "input_audio").iterdir())
        assert names == ["keep.wav"]


@pytest.mark.parametrize("path,code", [
    ("../../etc/passwd", (400, 404)), ("..%2F..%2Fetc%2Fpasswd", (400, 404)), ("/etc/passwd", (400, 404)),
    ("input_audio/../../x", (400, 404)), ("input_audio", (400,)), ("nothing.wav", (404,)),
    ("a%00.wav", (400,)), ("x" * 2000, (400,)), ("logs", (400,)),
])
def test_download_refuses_escape_folders_and_garbage(client, path, code):
    tid = create(client)["task_id"]
    up(client, tid, ("a.wav", b"x", "audio/wav"))
    r = client.get(f"/api/v1/task/{tid}/files/download/{path}")
    assert r.status_code in code, (path, r.status_code, r.text)
    assert "detail" in r.json()


def test_download_symlink_escape_is_refused(client, settings, tmp_path):
    tid = create(client)["task_id"]
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (settings.task_root / tid / "output").mkdir()
    (settings.task_root / tid / "output" / "link.wav").symlink_to(secret)
    assert client.get(f"/api/v1/task/{tid}/files/download/output/link.wav").status_code == 400
    assert client.get(f"/api/v1/task/{tid}/files/download/link.wav").status_code == 404


def test_bare_name_lookup_order_prefers_outputs(client, settings):
    tid = create(client)["task_id"]
    root = settings.task_root / tid
    for folder, content in (("input_audio", b"input"), ("sliced", b"sliced"), ("output", b"output")):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "x.wav").write_bytes(content)
    assert client.get(f"/api/v1/task/{tid}/files/download/x.wav").content == b"output"
    (root / "output" / "x.wav").unlink()
    assert client.get(f"/api/v1/task/{tid}/files/download/x.wav").content == b"sliced"
    assert client.get(f"/api/v1/task/{tid}/files/download/input_audio/x.wav").content == b"input"


def test_files_listing_unknown_folder_is_400(client):
    tid = create(client)["task_id"]
    assert client.get(f"/api/v1/task/{tid}/files", params={"folder": "../.."}).status_code == 400


def test_download_honours_range_so_players_can_seek(client, settings):
    """Browsers seek in audio with Range requests: 206 with exactly the bytes asked for."""
    tid = create(client)["task_id"]
    data = bytes(range(256)) * 4  # 1024 bytes, each position recognisable
    up(client, tid, ("a.wav", data, "audio/wav"))
    url = f"/api/v1/task/{tid}/files/download/input_audio/a.wav"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    for spec, start, end in (("bytes=2-5", 2, 5), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023),
                             ("bytes=10-99999", 10, 1023), ("bytes=0-0", 0, 0)):
        r = client.get(url, headers={"Range": spec})
        assert r.status_code == 206, (spec, r.text)
        assert r.content == data[start:end + 1], spec
        assert r.headers["content-range"] == f"bytes {start}-{end}/1024", spec
        assert int(r.headers["content-length"]) == end - start + 1
    two = client.get(url, headers={"Range": "bytes=0-1, 8-9"})
    assert two.status_code == 206 and two.headers["content-type"].startswith("multipart/byteranges")
    assert bytes([0, 1]) in two.content and bytes([8, 9]) in two.content
    # the bare name finds the same file, with the same ranges
    assert client.get(f"/api/v1/task/{tid}/files/download/a.wav", headers={"Range": "bytes=4-7"}).content == data[4:8]


@pytest.mark.parametrize("spec,code", [
    ("bytes=1024-", 416), ("bytes=5000-6000", 416), ("bytes=-0", 416),
    ("items=0-1", 400), ("bytes=", 400), ("bytes=5-2", 400), ("bytes=a-b", 400), ("bytes=1-2-3", 400),
])
def test_bad_or_unsatisfiable_range_is_answered_in_json(client, spec, code):
    tid = create(client)["task_id"]
    up(client, tid, ("a.wav", b"x" * 1024, "audio/wav"))
    r = client.get(f"/api/v1/task/{tid}/files/download/input_audio/a.wav", headers={"Range": spec})
    assert r.status_code == code, (spec, r.text)
    assert r.headers["content-type"].startswith("application/json") and r.json()["detail"]
    if code == 416:
        assert r.headers["content-range"] == "bytes */1024"


def test_range_with_a_stale_if_range_gets_the_whole_file(client):
    tid = create(client)["task_id"]
    up(client, tid, ("a.wav", b"y" * 100, "audio/wav"))
    url = f"/api/v1/task/{tid}/files/download/input_audio/a.wav"
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"changed"'})
    assert r.status_code == 200 and len(r.content) == 100
