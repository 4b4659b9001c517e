"""Known-checkpoint downloads against real HTTP servers on 127.0.0.1."""

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from stylediscover.errors import DownloadError
from stylediscover.generators import load_generator, registry


@pytest.fixture
def served(layout_dir):
    """An HTTP server on 127.0.0.1 serving the layout fixtures; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(layout_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STYLEDISCOVER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "generators"


def register(monkeypatch, url: str, sha256: str | None = None) -> str:
    entry = registry.KnownCheckpoint("testnet", url, "nvidia-pkl", 32, "test", sha256)
    monkeypatch.setitem(registry.KNOWN_CHECKPOINTS, "testnet", entry)
    return "testnet"


def test_known_entries_cover_the_paper_checkpoints():
    urls = {e.url.rsplit("/", 1)[-1] for e in registry.KNOWN_CHECKPOINTS.values()}
    assert {"ffhq.pkl", "ffhq-res512-mirror-stylegan2-noaug.pkl"} <= urls


def test_download_with_pinned_checksum(served, cache, monkeypatch, layout_dir):
    digest = hashlib.sha256((layout_dir / "nvidia_clamped.pkl").read_bytes()).hexdigest()
    name = register(monkeypatch, f"{served}/nvidia_clamped.pkl", digest)
    generator = load_generator(name)
    assert generator.resolution == 32
    assert (cache / "nvidia_clamped.pkl").exists()
    assert not list(cache.glob("*.part"))


def test_checksum_mismatch_leaves_nothing(served, cache, monkeypatch):
    name = register(monkeypatch, f"{served}/nvidia_clamped.pkl", "0" * 64)
    with pytest.raises(DownloadError, match="expected 0000"):
        registry.fetch(name)
    assert not list(cache.iterdir())


def test_unpinned_download_is_checked_on_later_use(served, cache, monkeypatch):
    name = register(monkeypatch, f"{served}/nvidia_clamped.pkl")
    path = registry.fetch(name)
    assert (cache / "nvidia_clamped.pkl.sha256").read_text().strip() == registry.sha256_of(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DownloadError, match="sha256 does not match"):
        registry.fetch(name)


def test_offline_error_names_url_and_local_path_alternative(cache, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ffhq.pkl"
    name = register(monkeypatch, url)
    with pytest.raises(DownloadError) as info:
        load_generator(name)
    message = str(info.value)
    assert url in message and "--generator PATH" in message and str(cache / "ffhq.pkl") in message
    assert not list(cache.iterdir())
