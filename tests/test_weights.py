"""Weights resolution and download, against a local HTTP server (no internet)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from pal4vst.model import weights
from pal4vst.model.weights import WeightsNotFound, resolve


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PAL4VST_MODELS", raising=False)
    monkeypatch.delenv("PAL4VST_MIRROR", raising=False)
    monkeypatch.setattr(weights, "_extra_dirs", [])
    return tmp_path


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_existing_path(tiny_pth, isolated):
    assert resolve(tiny_pth) == tiny_pth


def test_name_found_in_models_folder(tiny_pth, isolated, monkeypatch):
    folder = isolated / "models"
    folder.mkdir()
    (folder / "unified.pth").write_bytes(tiny_pth.read_bytes())
    monkeypatch.setenv("PAL4VST_MODELS", str(folder))
    assert resolve("unified") == folder / "unified.pth"


def test_host_folder_is_searched(tiny_pth, isolated):
    host = isolated / "ComfyUI" / "models" / "pal4vst"
    host.mkdir(parents=True)
    (host / "stylegan2.safetensors").write_bytes(tiny_pth.read_bytes())
    weights.add_model_dir(host)
    assert resolve("stylegan2") == host / "stylegan2.safetensors"
    assert host / "stylegan2.safetensors" in weights.list_local_models()


def test_release_downloads_from_mirror(tiny_pth, isolated, server, monkeypatch):
    root, url = server
    (root / "unified.pth").write_bytes(tiny_pth.read_bytes())
    monkeypatch.setenv("PAL4VST_MIRROR", url)
    path = resolve("unified")
    assert path == isolated / "cache" / "pal4vst" / "unified.pth"
    assert path.read_bytes() == tiny_pth.read_bytes()
    assert not list(path.parent.glob("*.partial"))


def test_url_source(tiny_pth, isolated, server):
    root, url = server
    (root / "mine.pth").write_bytes(tiny_pth.read_bytes())
    assert resolve(f"{url}/mine.pth").is_file()


def test_bad_download_is_not_kept(isolated, server, monkeypatch):
    root, url = server
    (root / "unified.pth").write_bytes(b"<html>quota exceeded</html>")
    monkeypatch.setenv("PAL4VST_MIRROR", url)
    with pytest.raises(WeightsNotFound, match="not a usable checkpoint"):
        resolve("unified")
    assert not list((isolated / "cache" / "pal4vst").glob("*"))


def test_offline_message_says_where_to_put_the_file(isolated, monkeypatch):
    monkeypatch.setenv("PAL4VST_MIRROR", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(WeightsNotFound) as e:
        resolve("unified")
    msg = str(e.value)
    assert "drive.google.com/uc?id=1414RYir0Q58Ix2CKrZoDmA5iilx8Gopb" in msg
    assert str(isolated / "cache" / "pal4vst") in msg and "unified.pth" in msg


def test_no_download_flag(isolated):
    with pytest.raises(WeightsNotFound, match="could not be downloaded"):
        resolve("unified", download=False)


def test_unknown_names_and_missing_files(isolated):
    with pytest.raises(WeightsNotFound, match="unknown model"):
        resolve("sd-artifacts")
    with pytest.raises(WeightsNotFound, match="not found"):
        resolve(str(Path("/nowhere/model.pth")))


def test_broken_drive_download_resumes_from_its_partial_file(tiny_pth, isolated, monkeypatch):
    """gdown stands in for Google Drive: the first transfer breaks after half the file, which is
    kept as ``unified.pth.partial`` (no unified.pth appears); the next call resumes it from that
    offset (gdown's resume=True) and the complete, loadable file is renamed into place."""
    import sys
    import types

    payload = tiny_pth.read_bytes()
    calls = []

    def download(id, output, quiet, resume):
        out = Path(output)
        have = out.stat().st_size if out.exists() else 0
        calls.append((id, out.name, resume, have))
        with out.open("ab") as f:
            if len(calls) == 1:
                f.write(payload[: len(payload) // 2])
                raise ConnectionError("connection reset")
            assert resume and have == len(payload) // 2  # resumed, not restarted
            f.write(payload[have:])
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download))
    dest_dir = isolated / "models"
    with pytest.raises(WeightsNotFound, match="Google Drive download failed"):
        weights.download_release("unified", dest_dir)
    partial = dest_dir / "unified.pth.partial"
    assert partial.stat().st_size == len(payload) // 2 and not (dest_dir / "unified.pth").exists()
    path = weights.download_release("unified", dest_dir)
    assert path == dest_dir / "unified.pth" and path.read_bytes() == payload and not partial.exists()
    assert [c[:3] for c in calls] == [(weights.RELEASES["unified"].pth_id, "unified.pth.partial", True)] * 2
