"""The explorer's web surface against hostile requests (a real uvicorn server on a free port, raw HTTP): Host
allow-list, Origin check, JSON-only bodies, export paths limited to the served roots with one message for every path
it will not open, 422 for bad exports, uploads deleted once projected and capped together, the token."""

import http.client
import json
import os
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner
from explore_world import QUICKSTART, copy_export, corrupt_export, render_png

from stylediscover.cli import main
from stylediscover.explore import projection
from stylediscover.explore.guard import allowed_hosts
from stylediscover.explore.server import Explorer, create_app, listen
from stylediscover.explore.sources import resolve_exports

TOKEN = "0123456789abcdef0123"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Served roots: the storage path and one --root folder holding a good, a corrupt and a malformed export."""
    root = tmp_path_factory.mktemp("web")
    (root / "sweeps").mkdir()
    extra = root / "extra"
    copy_export(extra / "good")
    corrupt_export(extra / "corrupt")
    malformed = copy_export(extra / "malformed") / "directions.json"
    malformed.write_text(json.dumps({**json.loads(malformed.read_text()), "config": None}))
    (extra / "notes").mkdir()
    outside = copy_export(root / "outside")
    return root, extra, outside


def start(explorer: Explorer, token: str | None = None):
    sock = listen(0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(explorer, allowed_hosts("127.0.0.1"), port, token),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, port


@pytest.fixture(scope="module")
def served(world):
    root, extra, _ = world
    explorer = Explorer(resolve_exports(str(QUICKSTART), root / "sweeps"), str(root / "sweeps"), 2, [extra])
    server, thread, port = start(explorer)
    yield port, explorer
    server.should_exit = True
    thread.join(30)


def call(port: int, method: str, path: str, body: bytes | dict | None = None, **headers: str):
    """(status, JSON answer or None, response headers) of one raw request; Host defaults to 127.0.0.1:port."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    headers.setdefault("Host", f"127.0.0.1:{port}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        answer = json.loads(data) if response.getheader("content-type", "").startswith("application/json") else None
        return response.status, answer, response
    finally:
        conn.close()


def test_only_allowed_host_names_are_answered(served):
    port, _ = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert call(port, "GET", "/api/config", Host=host)[0] == 200
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "", "[::1"):
        status, answer, _ = call(port, "GET", "/api/config", Host=host)
        assert status == 421 and "is not served here" in answer["error"] and "\n" not in answer["error"]
    assert call(port, "GET", "/", Host="rebound.example")[0] == 421


def test_posts_from_other_origins_and_non_json_bodies_are_refused(served):
    port, _ = served
    state = {"export": "export", "samples": {"seeds": [0], "truncation": 0.7}}
    assert call(port, "POST", "/api/render", state)[0] == 200
    assert call(port, "POST", "/api/render", state, Origin=f"http://127.0.0.1:{port}")[0] == 200
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", "http://127.0.0.1:1",
                   f"https://127.0.0.1:{port}"):
        status, answer, _ = call(port, "POST", "/api/render", state, Origin=origin)
        assert status == 403 and "are refused" in answer["error"], origin
    body = json.dumps(state).encode()
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content_Type": media} if media else {}
        for route in ("/api/render", "/api/exports", "/api/image", "/api/recipe"):
            status, answer, _ = call(port, "POST", route, body, **headers)
            assert status == 415 and "expected a JSON body" in answer["error"], (route, media)
    status, answer, _ = call(port, "POST", "/api/upload?name=a.png&exports=export", b"x", Content_Type="text/plain")
    assert status == 415 and "application/octet-stream" in answer["error"]


def test_export_paths_are_limited_to_the_served_roots_with_one_message(served, world):
    port, _ = served
    root, extra, outside = world
    refused = {}
    for path in ("/etc", "/etc/passwd", "/nonexistent/x", str(outside), str(outside / "directions.safetensors"),
                 str(extra / "notes"), str(extra / "missing"), "../../etc", str(extra / ".." / "outside"), "x" * 5000):
        status, answer, _ = call(port, "POST", "/api/exports", {"path": path})
        assert status == 422, (path, answer)
        refused[path] = answer["error"]
    messages = {message.replace(path[:200], "PATH", 1) for path, message in refused.items() if len(path) <= 4096}
    assert len(messages) == 1 and "not an export this explorer opens" in messages.pop()
    status, answer, _ = call(port, "POST", "/api/exports", {"path": str(extra / "corrupt")})
    assert status == 422 and "cannot read directions" in answer["error"]
    status, answer, _ = call(port, "POST", "/api/exports", {"path": str(extra / "malformed")})
    assert status == 422 and "config: Input should be a valid dictionary" in answer["error"]
    status, answer, _ = call(port, "POST", "/api/exports", {"path": str(extra / "good")})
    assert status == 200 and answer["exports"][0]["id"].startswith("added")


def png_bytes(tmp_path: Path) -> bytes:
    return render_png(tmp_path / "upload.png").read_bytes()


def test_uploads_are_deleted_once_projected_and_capped_together(served, tmp_path, monkeypatch):
    port, explorer = served
    data = png_bytes(tmp_path)
    status, answer, _ = call(port, "POST", "/api/upload?name=a.png&steps=2&exports=export", data,
                             Content_Type="application/octet-stream")
    assert status == 200, answer
    deadline = time.monotonic() + 120
    while (state := call(port, "GET", f"/api/upload/{answer['upload']}")[1]["state"]) in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state == "done"
    while explorer.projector.held_files():  # deleted as its projection's thread finishes
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert explorer.projector.held_bytes == 0
    monkeypatch.setattr(projection, "MAX_HELD_BYTES", len(data) - 1)
    status, answer, _ = call(port, "POST", "/api/upload?name=b.png&steps=2&exports=export", data,
                             Content_Type="image/png")
    assert status == 422 and "uploads waiting to be projected" in answer["error"]
    assert explorer.projector.held_files() == []


def test_a_token_is_required_when_the_server_has_one(world):
    root, _, _ = world
    explorer = Explorer(resolve_exports(str(QUICKSTART), root / "sweeps"), str(root / "sweeps"), 2)
    server, thread, port = start(explorer, TOKEN)
    try:
        assert call(port, "GET", "/api/config")[0] == 401
        assert call(port, "GET", "/api/config?token=wrong")[0] == 401
        status, _, response = call(port, "GET", f"/?token={TOKEN}")
        cookie = response.getheader("set-cookie")
        assert status == 200 and TOKEN in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert call(port, "GET", "/api/config", Cookie=cookie.split(";")[0])[0] == 200
        assert call(port, "GET", "/api/config", Authorization=f"Bearer {TOKEN}")[0] == 200
        assert call(port, "GET", "/api/config", Cookie="stylediscover_explorer=nope")[0] == 401
    finally:
        server.should_exit = True
        thread.join(30)


def test_listening_beyond_loopback_needs_a_long_token():
    result = CliRunner().invoke(main, ["explore", str(QUICKSTART), "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and result.output == ("error: --host: listening on 0.0.0.0 (beyond this machine) "
                                                       "needs a --token\n")
    result = CliRunner().invoke(main, ["explore", str(QUICKSTART), "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "--token: use at least 16 characters" in result.output


def test_the_page_sends_json_and_octet_stream():
    script = (Path(__file__).parents[1] / "stylediscover" / "explore" / "static" / "explorer.js").read_text()
    assert '"Content-Type": "application/json"' in script and '"Content-Type": "application/octet-stream"' in script
    assert script.count('method: "POST"') == 2  # postJson and the upload



def test_labels_never_wait_on_special_files(tmp_path):
    """metrics.json and summary.json give the exports' labels; a FIFO or device there is skipped, not waited on."""
    folder = copy_export(tmp_path / "sweep" / "best")
    (folder / "metrics.json").unlink()
    os.mkfifo(folder / "metrics.json")
    (tmp_path / "sweep" / "spec.json").write_text("{}")
    (tmp_path / "sweep" / "summary.json").symlink_to("/dev/zero")
    found = []
    worker = threading.Thread(target=lambda: found.extend(resolve_exports(str(tmp_path / "sweep"), "x")), daemon=True)
    worker.start()
    worker.join(20)
    assert [ref.label for ref in found] == ["selected: best"]
