"""Real webuis with this extension, one of each gradio line: Stable Diffusion WebUI Forge
(gradio 4.40, pydantic 2) and Forge Classic (gradio 3.41.2, pydantic 1.10, fastapi 0.94: the A1111
1.x machinery). Routes answer regions as JSON (also under concurrent requests), bad script args are
refused before generation, the page loads in a browser without an error from the host, and with a
full-size SD1.5 checkpoint the AlwaysOn auto-fix and /refine run through the webui's own img2img.

Each host is skipped unless its checkout is named: ``FORGE_DIR`` with ``FORGE_PYTHON``
(``../shared/tools/forge_env.sh``), ``CLASSIC_DIR`` with ``CLASSIC_PYTHON``
(``../shared/tools/forge_classic_env.sh``; the tree must not lie under a folder whose name starts
with ".", or gradio 3.41 refuses the webui's own scripts). The SD tests also need
``PAL4VST_TEST_SD15``: an SD1.5 checkpoint (``../shared/tools/make_random_sd15.py`` writes one of
random weights); the browser test needs Chromium (``PAL4VST_CHROMIUM``, default ``chromium``) and
leaves its screenshots in ``PAL4VST_SCREENSHOTS`` when set. Each webui starts on 127.0.0.1 with a
temporary ``--data-dir`` holding this extension, the crafted "bright" PAL4VST model and the
checkpoint; the webui's own folders are left untouched.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FAR_B, FAR_WIDTH, ROOT, SQUARES, load_extension, squares_image, two_squares
from pal4vst.testing import bright_checkpoint

HOSTS = {name: (os.environ[d], os.environ.get(py, "python"))
         for name, d, py in (("forge", "FORGE_DIR", "FORGE_PYTHON"), ("classic", "CLASSIC_DIR", "CLASSIC_PYTHON"))
         if os.environ.get(d)}
SD15 = os.environ.get("PAL4VST_TEST_SD15")
pytestmark = pytest.mark.skipif(not HOSTS, reason="set FORGE_DIR / CLASSIC_DIR (and their Pythons) to run")
needs_sd = pytest.mark.skipif(not SD15, reason="set PAL4VST_TEST_SD15 to an SD1.5 checkpoint to run")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, body: dict | None = None, timeout: float = 1200) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def _b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _image(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def start_forge(data: Path, host: str = "forge"):
    """The webui ``host`` on a free loopback port with ``data`` as its --data-dir; yields (url, log path)."""
    port = _free_port()
    home, python = HOSTS[host]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log_path = data / "forge.log"
    log = log_path.open("w")
    proc = subprocess.Popen([python, "launch.py", "--skip-prepare-environment", "--skip-install",
                             "--skip-python-version-check", "--always-cpu", "--no-download-sd-model",
                             "--server-name", "127.0.0.1", "--port", str(port), "--api", "--data-dir", str(data)],
                            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(360):  # the extension's routes exist once on_app_started has run
            if proc.poll() is not None:
                pytest.fail(f"{host} exited: {log_path.read_text()[-3000:]}")
            try:
                if _call(f"{url}/pal4vst/v1/models", timeout=5)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"{host} did not answer in 180 s: {log_path.read_text()[-3000:]}")
        yield url, log_path
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def data_dir(base: Path) -> Path:
    """A --data-dir holding this extension and the bright PAL4VST model."""
    (base / "extensions").mkdir(parents=True)
    (base / "extensions" / "pal4vst").symlink_to(ROOT, target_is_directory=True)
    bright_checkpoint(base / "models" / "pal4vst" / "bright.safetensors")
    # marks only the brightest patches of the random SD1.5's noise (~20 % of it), so that a fix
    # has pixels outside its regions to leave alone
    bright_checkpoint(base / "models" / "pal4vst" / "brighter.safetensors", grey=145)
    return base


@pytest.fixture(scope="module", params=sorted(HOSTS))
def forge(request, tmp_path_factory):
    data = data_dir(tmp_path_factory.mktemp(request.param) / "data")
    if SD15:
        (data / "models" / "Stable-diffusion").mkdir(parents=True)
        (data / "models" / "Stable-diffusion" / Path(SD15).name).symlink_to(SD15)
    yield from start_forge(data, request.param)


def test_detect_answers_regions_also_under_concurrency(forge):
    url, _ = forge
    payload = {"image": _b64(squares_image()), "model": "bright.safetensors"}
    status, body = _call(f"{url}/pal4vst/v1/detect", payload)
    assert status == 200, body
    assert len(body["regions"]) == len(SQUARES)
    for reg in body["regions"]:
        assert len(reg["bbox"]) == 4 and all(type(v) is int for v in reg["bbox"]) and reg["area"] > 0
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _call(f"{url}/pal4vst/v1/detect", payload), range(16)))
    assert len(answers) == 16 and [a[0] for a in answers] == [200] * 16
    assert all(a[1] == body for a in answers)


def test_refine_with_opencv_changes_only_the_mask(forge):
    url, _ = forge
    img = squares_image()
    status, body = _call(f"{url}/pal4vst/v1/refine", {"image": _b64(img), "inpainter": "opencv",
                                                      "args": {"model": "bright.safetensors", "work_size": 128}})
    assert status == 200, body
    out, mask = _image(body["image"]), _image(body["mask"])[..., 0] > 0
    assert body["report"] and body["kept"] == sum(r["accepted"] for r in body["report"]) >= 1 and mask.any()
    assert np.array_equal(out[~mask], img[~mask]) and (out[mask] != img[mask]).any()


def test_bad_script_args_are_refused_before_generation(forge):
    url, _ = forge
    status, body = _call(f"{url}/sdapi/v1/txt2img", {"prompt": "x", "steps": 1,
                                                     "alwayson_scripts": {"PAL4VST": {"args": [True, {"denoise": 7}]}}})
    assert status == 422 and "denoise must be between" in json.dumps(body)


def browse(url: str, screenshot: Path, height: int = 1800) -> str:
    """``url`` in headless Chromium after its scripts ran: the screenshot written to ``screenshot``;
    returns the page's DOM as the scripts left it."""
    exe = shutil.which(os.environ.get("PAL4VST_CHROMIUM", "chromium"))
    if not exe:
        pytest.skip("no Chromium for the browser check (set PAL4VST_CHROMIUM)")
    with tempfile.TemporaryDirectory() as profile:
        base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--window-size=1400,{height}", "--virtual-time-budget=30000"]
        subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=300, check=True)
        return subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=300,
                              check=True).stdout


ERROR_BADGE = re.compile(r'class="error[^"]*">\s*Error\s*<')  # gradio's red badge on a component whose update failed


@needs_sd  # without a checkpoint Forge Classic's own page load raises "No checkpoints found"
def test_the_page_loads_without_an_error_from_the_host(forge, request, tmp_path):
    """A user's first look: the webui's page in a browser. With the extension installed, gradio 3
    webuis answered the page's settings refresh with 500 and put red "Error" badges on the
    checkpoint, VAE and clip-skip quick settings (and every Settings control)."""
    url, log_path = forge
    host = request.node.callspec.params["forge"]
    before = log_path.stat().st_size
    folder = Path(os.environ.get("PAL4VST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    dom = browse(url, folder / f"{host}_page.png")
    assert "PAL4VST: fix artifacts" in dom  # the page's scripts ran and built the UI
    assert "Clip skip" in dom  # a quick setting the webui refreshes on load (it carried a badge)
    assert not ERROR_BADGE.search(dom), ERROR_BADGE.findall(dom)
    during = log_path.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in during, during[-3000:]


def test_extension_tab_and_script_are_listed(forge):
    url, log_path = forge
    status, scripts = _call(f"{url}/sdapi/v1/scripts")
    assert status == 200 and "pal4vst" in [s.lower() for s in scripts["txt2img"] + scripts["img2img"]]
    assert "PAL4VST extension not loaded" not in log_path.read_text()


@needs_sd
@pytest.mark.parametrize("candidates", [1, 2])
def test_alwayson_autofix_runs_in_txt2img(forge, candidates):
    url, _ = forge
    base = {"prompt": "a photo of a cat", "steps": 1, "width": 256, "height": 256, "seed": 7, "sampler_name": "Euler"}
    args = {"model": "bright.safetensors", "work_size": 256, "max_regions": 1, "steps": 1, "denoise": 0.6,
            "candidates": candidates}
    status, body = _call(f"{url}/sdapi/v1/txt2img", {**base, "alwayson_scripts": {"PAL4VST": {"args": [True, args]}}})
    assert status == 200, body
    info = json.loads(body["info"])["infotexts"][0]
    assert "PAL4VST PAR before:" in info and "PAL4VST PAR after:" in info
    kept = int(info.split("PAL4VST regions kept: ")[1].split(",")[0])
    total = int(info.split("PAL4VST regions judged: ")[1].split(",")[0])
    assert total == 1 and kept in (0, 1), info
    assert ("PAL4VST candidates: 2" in info) == (candidates == 2)
    assert _image(body["images"][0]).shape == (256, 256, 3)
    print(info)


@needs_sd
def test_alwayson_fix_changes_pixels_only_inside_the_repaired_mask(forge):
    """The same txt2img (same seed) without and with the AlwaysOn fix: every pixel the fix changed
    lies in the detector's mask of the unfixed image grown by ``grow`` (nothing else may change),
    and an image whose repaint was reverted comes back bit-identical. The "brighter" detector marks
    a part of the image, not all of it."""
    import cv2

    from pal4vst.masks import fill_holes

    url, _ = forge
    base = {"prompt": "a photo of a cat", "steps": 1, "width": 256, "height": 256, "seed": 11, "sampler_name": "Euler"}
    args = {"model": "brighter.safetensors", "work_size": 256, "max_regions": 1, "steps": 1, "denoise": 0.75,
            "iterations": 1, "seed": 5}
    status, plain = _call(f"{url}/sdapi/v1/txt2img", base)
    assert status == 200, plain
    status, fixed = _call(f"{url}/sdapi/v1/txt2img", {**base, "alwayson_scripts": {"PAL4VST": {"args": [True, args]}}})
    assert status == 200, fixed
    before, after = _image(plain["images"][0]), _image(fixed["images"][0])
    info = json.loads(fixed["info"])["infotexts"][0]
    assert _infotext_value(info, "PAL4VST regions judged") == "1", info
    status, det = _call(f"{url}/pal4vst/v1/detect", {"image": plain["images"][0], "model": "brighter.safetensors"})
    assert status == 200 and det["regions"], det
    grow = load_extension().args.PALArgs().grow
    reach = np.ones((2 * grow + 5, 2 * grow + 5), np.uint8)  # a square: covers any grow of up to grow + 2 px
    allowed = fill_holes(cv2.dilate((_image(det["mask"])[..., 0] > 0).astype(np.uint8), reach) > 0)
    assert 0 < allowed.mean() < 0.8, allowed.mean()  # pixels outside the mask to check
    changed = (after != before).any(-1)
    assert not (changed & ~allowed).any(), int((changed & ~allowed).sum())
    kept = int(_infotext_value(info, "PAL4VST regions kept"))
    assert changed.any() == bool(kept), (kept, int(changed.sum()))
    print(f"kept {kept}, changed {int(changed.sum())} px, allowed {int(allowed.sum())} px")


def _infotext_value(info: str, key: str) -> str:
    return info.split(f"{key}: ")[1].split(",")[0].split("\n")[0].strip()


@needs_sd
def test_each_image_of_a_batch_fixes_with_its_own_seed(forge):
    """txt2img, batch size 3, AlwaysOn fix with the fix seed at -1: each image's infotext says its
    fix started from that image's own seed, and the three differ."""
    url, _ = forge
    base = {"prompt": "a photo of a cat", "steps": 1, "width": 256, "height": 256, "seed": 1234, "batch_size": 3,
            "sampler_name": "Euler"}
    args = {"model": "bright.safetensors", "work_size": 256, "max_regions": 1, "steps": 1, "denoise": 0.6}
    status, body = _call(f"{url}/sdapi/v1/txt2img", {**base, "alwayson_scripts": {"PAL4VST": {"args": [True, args]}}})
    assert status == 200, body
    info = json.loads(body["info"])
    texts = info["infotexts"]
    assert len(texts) == 3 and info["all_seeds"] == [1234, 1235, 1236]
    fix = [int(_infotext_value(t, "PAL4VST fix seed")) for t in texts]
    own = [int(_infotext_value(t, "Seed")) for t in texts]
    assert fix == own == info["all_seeds"], texts
    print(fix, [_infotext_value(t, "PAL4VST regions kept") for t in texts])


@needs_sd
def test_refine_through_forges_img2img_changes_only_the_mask(forge):
    url, _ = forge
    img = squares_image()
    args = {"model": "bright.safetensors", "work_size": 256, "steps": 1, "denoise": 0.6, "seed": 3}
    status, body = _call(f"{url}/pal4vst/v1/refine", {"image": _b64(img), "inpainter": "webui", "args": args})
    assert status == 200, body
    out, mask = _image(body["image"]), _image(body["mask"])[..., 0] > 0
    assert body["report"] and body["kept"] == sum(r["accepted"] for r in body["report"])
    changed = (out != img).any(-1)
    assert not (changed & ~mask).any()  # nothing outside the kept regions changed
    if body["kept"]:
        assert changed.sum() > 0.5 * mask.sum()  # Forge's img2img painted the kept regions


@needs_sd
def test_refine_with_two_candidates_reports_and_reverts(forge):
    """Two regions, two candidates each (one img2img job of batch 2 per crop): the report has both
    with two scores and consecutive seeds; a reverted region keeps its pixels; min_gain 1 reverts
    all (the image comes back as it was)."""
    url, _ = forge
    img = two_squares(w=FAR_WIDTH, b=FAR_B)
    for extra in ({}, {"min_gain": 1.0}):
        args = {"model": "bright.safetensors", "work_size": 256, "steps": 1, "denoise": 0.6, "seed": 3,
                "candidates": 2, **extra}
        status, body = _call(f"{url}/pal4vst/v1/refine", {"image": _b64(img), "inpainter": "webui", "args": args})
        assert status == 200, body
        out, mask = _image(body["image"]), _image(body["mask"])[..., 0] > 0
        report = body["report"]
        assert len(report) == body["judged"] == 2
        changed = (out != img).any(-1)
        assert not (changed & ~mask).any()
        for r in report:
            assert len(r["scores"]) == 2 and r["seeds"] == [r["seeds"][0], r["seeds"][0] + 1]
            x0, y0, x1, y1 = r["bbox"]
            if not r["accepted"]:
                assert not changed[y0:y1, x0:x1].any()
        if extra:
            assert body["kept"] == 0 and not changed.any()
        print(extra, [(round(r["score_before"], 3), r["scores"], r["accepted"]) for r in report])


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_an_older_ui_config_does_not_override_the_declarations(tmp_path, host):
    """Forge started with the ui-config.json an older version left (grow -64..128, minimum area
    64, the model dropdowns saved on "unified") and Settings -> Default model set to another
    model: the controls come up with the declared ranges and defaults and the set model."""
    from pal4vst.options import declaration

    PALArgs = load_extension().args.PALArgs

    data = data_dir(tmp_path / "data")
    cfg = "customscript/pal4vst.py/txt2img"
    (data / "ui-config.json").write_text(json.dumps({
        f"{cfg}/Grow mask (px)/minimum": -64, f"{cfg}/Grow mask (px)/maximum": 128, f"{cfg}/Grow mask (px)/value": 8,
        f"{cfg}/Minimum region area (px)/value": 64, f"{cfg}/PAL4VST model/value": "unified",
        "pal4vst_tab/Model/value": "unified", f"{cfg}/Denoising strength/value": 0.35,
    }))
    (data / "config.json").write_text(json.dumps({"pal4vst_default_model": "bright.safetensors"}))
    for url, log_path in start_forge(data, host):
        status, config = _call(f"{url}/config")
        assert status == 200
    props = [c.get("props", {}) for c in config["components"]]
    grow, area, model = (declaration(PALArgs, n) for n in ("grow", "min_area", "model"))
    sliders = [p for p in props if p.get("label") == grow.label]
    assert len(sliders) >= 2  # txt2img and img2img
    for p in sliders:
        assert (p["minimum"], p["maximum"], p["value"]) == (grow.spec.min, grow.spec.max, grow.default), p
    areas = [p for p in props if p.get("label") == area.label]
    assert areas and all(p["value"] == area.default for p in areas)
    denoise = [p["value"] for p in props if p.get("label") == "Denoising strength" and p.get("maximum") == 1]
    assert 0.35 in denoise  # a value the user chose stays
    models = [p for p in props if p.get("label") in (model.label, "Model") and "bright.safetensors" in
              [c[0] if isinstance(c, list) else c for c in p.get("choices", [])]]
    assert len(models) >= 3  # the two accordions and the tab
    assert all(p["value"] == "bright.safetensors" for p in models), [p["value"] for p in models]
    saved = json.loads((data / "ui-config.json").read_text())
    assert saved[f"{cfg}/Grow mask (px)/minimum"] == grow.spec.min and "pal4vst_tab/Model/value" not in saved
    assert "older version" in log_path.read_text()
