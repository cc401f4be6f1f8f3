"""A real ComfyUI for the integration tests: started on a free loopback port with a base directory
that holds this pack (and whatever else a test puts in custom_nodes), and prompts queued through
its HTTP API. ``COMFYUI_DIR`` names the checkout, ``COMFYUI_PYTHON`` the Python with its
requirements (default: this one)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

COMFY = os.environ.get("COMFYUI_DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


@contextlib.contextmanager
def comfyui(base: Path, env: dict | None = None):
    """ComfyUI on a free port with ``base`` as its base directory (this pack in custom_nodes)."""
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / "pal4vst").symlink_to(ROOT, target_is_directory=True)
    port = free_port()
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    log_path = base / "comfy.log"
    log = log_path.open("w")
    proc = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                             "--base-directory", str(base), "--disable-auto-launch"],
                            cwd=COMFY, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited: {log_path.read_text()[-2000:]}")
            try:
                get(f"{url}/system_stats")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        else:
            pytest.fail("ComfyUI did not start in 120 s")
        yield url, log_path
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def submit(url: str, prompt: dict) -> str:
    """Queue ``prompt``; its prompt id."""
    req = urllib.request.Request(f"{url}/prompt", data=json.dumps({"prompt": prompt}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        return json.load(urllib.request.urlopen(req, timeout=30))["prompt_id"]
    except urllib.error.HTTPError as e:
        pytest.fail(f"prompt refused: {e.read().decode()[:2000]}")


def wait(url: str, pid: str, seconds: float = 1800) -> dict:
    """The history entry of prompt ``pid`` once it has finished (a fine-tune is k + 1 trainings)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        hist = get(f"{url}/history/{pid}")
        if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
            return hist[pid]
        time.sleep(0.2)
    pytest.fail(f"prompt did not finish in {seconds:.0f} s")


def queue(url: str, prompt: dict) -> dict:
    """The finished history entry of ``prompt``."""
    return wait(url, submit(url, prompt))


def run(url: str, prompt: dict) -> dict:
    entry = queue(url, prompt)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    return entry["outputs"]
