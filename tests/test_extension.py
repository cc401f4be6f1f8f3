"""The A1111 / Forge extension's logic without a webui: args, infotext, the postprocess pipeline
(OpenCV standing in for img2img), the tab's functions and the API through a real FastAPI app."""

from __future__ import annotations

import base64
import io
import json
import tempfile

import numpy as np
import pytest
from PIL import Image

from conftest import A, FAR_B, FAR_WIDTH, load_extension, SQUARES, KnownCandidates, disc_dilate, square_mask, squares_image, synthetic_image, two_squares

ext = load_extension()

from pal4vst_extension.args import ArgsError, PALArgs  # noqa: E402
from pal4vst_extension.pipeline import auto_fix  # noqa: E402
from pal4vst_extension.services import Services, UnknownModel  # noqa: E402
from pal4vst_extension.tab_actions import detect_image, fix_image, score_folder  # noqa: E402

from pal4vst.zoom.inpaint import OpenCVInpainter  # noqa: E402


@pytest.fixture
def services(tiny_st, bright_st, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.safetensors").write_bytes(tiny_st.read_bytes())
    (folder / "bright.safetensors").write_bytes(bright_st.read_bytes())
    return Services(model_dirs=[folder], device="cpu", dtype="fp32", download=False)


def _b64(arr: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


# ------------------------------------------------------------------------------------------ args


def test_args_positional_dict_and_enabled_dict_agree():
    a = PALArgs.parse([True, "unified", 0.4])
    b = PALArgs.parse([{"enabled": True, "model": "unified", "threshold": 0.4}])
    c = PALArgs.parse([True, {"threshold": "0.4"}])
    assert a == b == c and a.threshold == 0.4 and a.grow == PALArgs().grow


@pytest.mark.parametrize("bad,match", [
    ({"threshold": 1.5}, "threshold must be between"),
    ({"work_size": 500}, "multiple of 8"),
    ({"steps": "many"}, "steps must be an integer"),
    ({"colour": "red"}, "unknown PAL4VST arg"),
    ({"enabled": "perhaps"}, "enabled must be true or false"),
])
def test_bad_args_are_named(bad, match):
    with pytest.raises(ArgsError, match=match):
        PALArgs.parse(bad)


def test_too_many_positional_args():
    with pytest.raises(ArgsError, match="at most"):
        PALArgs.parse([True] * 40)


def test_infotext_round_trip():
    a = PALArgs.parse({"enabled": True, "model": "stylegan2", "denoise": 0.35, "grow": 12, "prompt": "hands"})
    params = {k: str(v) for k, v in a.infotext().items()}  # the webui parses infotext values as strings
    assert PALArgs.from_infotext(params) == a
    assert PALArgs.from_infotext({"Steps": "20"}) is None


# ------------------------------------------------------------------------------------- pipeline


class FakeP:
    """What postprocess_image reads from a StableDiffusionProcessing."""

    def __init__(self):
        self.extra_generation_params = {}
        self.prompt, self.seed = "a cat", 1


def test_auto_fix_changes_only_the_repaired_mask(services):
    img = Image.fromarray(synthetic_image(96, 128, 4))
    args = PALArgs.parse({"enabled": True, "model": "tiny.safetensors", "work_size": 64, "min_area": 0})
    res = auto_fix(img, args, services.detector(args.model), OpenCVInpainter())
    src, out = np.asarray(img), np.asarray(res.image)
    m = np.asarray(res.mask) > 0
    assert out.shape == src.shape and np.array_equal(out[~m], src[~m])
    assert res.report and res.changed == (res.kept >= 1)
    info = res.infotext()
    assert set(info) == {"PAL4VST PAR before", "PAL4VST PAR after", "PAL4VST regions kept", "PAL4VST regions judged",
                         "PAL4VST fix seed"}
    assert (info["PAL4VST regions kept"], info["PAL4VST regions judged"]) == (str(res.kept), str(len(res.report)))


def test_auto_fix_keeps_only_the_regions_the_detector_finds_better(services):
    """The known-candidates case: A takes candidate 1, B keeps its pixels; the infotext counts."""
    img, B = two_squares(w=FAR_WIDTH, b=FAR_B), FAR_B
    args = PALArgs.parse({"enabled": True, "model": "bright.safetensors", "candidates": 2, "work_size": 64})
    detector = services.detector(args.model)
    res = auto_fix(Image.fromarray(img), args, detector, KnownCandidates())
    assert len(res.report) == 2 and res.kept == 1 and res.judged == 2
    assert (res.infotext()["PAL4VST regions kept"], res.infotext()["PAL4VST regions judged"]) == ("1", "2")
    allowed = disc_dilate(detector(img).mask, args.grow + 1)
    allowed[:, 200:] = False  # only square A's repaint was kept
    changed = (np.asarray(res.image) != img).any(-1)
    assert changed.any() and not (changed & ~allowed).any() and not ((np.asarray(res.mask) > 0) & ~allowed).any()
    out = np.asarray(res.image)
    assert out[(A[0] + A[2]) // 2, (A[1] + A[3]) // 2].max() <= 30
    assert np.array_equal(out[B[0]:B[2], B[1]:B[3]], img[B[0]:B[2], B[1]:B[3]])


def test_min_par_leaves_clean_images_alone(services):
    img = Image.fromarray(synthetic_image(64, 64, 1))
    args = PALArgs.parse({"enabled": True, "model": "tiny.safetensors", "min_par": 0.99})
    res = auto_fix(img, args, services.detector(args.model), OpenCVInpainter())
    assert not res.changed and res.image is img


def test_rgba_generations_keep_their_alpha(services):
    rgba = np.dstack([synthetic_image(64, 64, 2), np.full((64, 64), 200, np.uint8)])
    args = PALArgs.parse({"enabled": True, "model": "tiny.safetensors", "work_size": 64, "min_area": 0})
    res = auto_fix(Image.fromarray(rgba, "RGBA"), args, services.detector(args.model), OpenCVInpainter())
    assert res.changed and res.image.mode == "RGBA" and np.all(np.asarray(res.image)[..., 3] == 200)


# ------------------------------------------------------------------------------------------ tab


def test_tab_detect_fix_and_folder(services, tmp_path, monkeypatch):
    img = Image.fromarray(synthetic_image(80, 80, 3))
    ov, mask, text = detect_image(services, "tiny.safetensors", img, 0.5)
    assert ov.size == mask.size == (80, 80) and text.startswith("PAR")
    args = PALArgs.parse({"enabled": True, "model": "tiny.safetensors", "work_size": 64})
    before, after, repaired, text, rows = fix_image(services, args, img, OpenCVInpainter())
    assert after.size == (80, 80) and rows and "region repaint(s) kept" in text
    kept = [r[-1].startswith("kept") for r in rows]
    assert sum(kept) == int(text.split("; ")[1].split()[0])
    assert np.asarray(repaired).any() == any(kept)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(48, 48, i)).save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"nope")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the tab's CSV goes to a temporary folder
    gallery, csv_path, summary = score_folder(services, "tiny.safetensors", str(folder), 0.5)
    assert len(gallery) == 3 and "1 unreadable" in summary
    rows = open(csv_path).read().splitlines()
    assert rows[0] == "rank,path,par,width,height,regions,status" and len(rows) == 5  # the CLI's columns
    assert rows[-1].startswith(",") and rows[-1].split(",")[-1].startswith("failed:")  # the unreadable one, last
    with pytest.raises(ValueError, match="upload an image"):
        detect_image(services, "tiny.safetensors", None, 0.5)
    with pytest.raises(UnknownModel, match="unknown PAL4VST model 'nope.pth'; available: unified"):
        services.detector("nope.pth")


# ------------------------------------------------------------------------------------------- API


@pytest.fixture
def client(services):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pal4vst_extension.api import install_args_validator, register_routes

    app = FastAPI()

    @app.post("/sdapi/v1/txt2img")
    def txt2img(body: dict) -> dict:  # stands in for the webui's route
        return {"ok": True, "scripts": list(body.get("alwayson_scripts", {}))}

    register_routes(app, services, inpainter_factory=None)
    client = TestClient(app)
    assert client.get("/pal4vst/v1/args").status_code == 200  # the app has started serving
    install_args_validator(app)  # as the webui does it: after start-up
    return client


def test_api_models_and_args(client):
    r = client.get("/pal4vst/v1/models")
    assert r.status_code == 200 and "unified" in r.json()["models"] and "tiny.safetensors" in r.json()["models"]
    assert client.get("/pal4vst/v1/args").json()["order"][0] == "enabled"


def _inside(bbox, square) -> bool:
    """The square's centre lies inside the region's box ``(x0, y0, x1, y1)``."""
    y0, x0, y1, x1 = square
    return bbox[0] <= (x0 + x1) / 2 < bbox[2] and bbox[1] <= (y0 + y1) / 2 < bbox[3]


def test_api_detect_answers_regions_as_json(client):
    r = client.post("/pal4vst/v1/detect", json={"image": _b64(squares_image()), "model": "bright.safetensors",
                                                "return_probability": True})
    assert r.status_code == 200, r.text
    body = json.loads(r.text)
    regions = body["regions"]
    assert len(regions) == len(SQUARES)  # before checking each: the route must have found them
    for square in SQUARES:
        assert any(_inside(reg["bbox"], square) for reg in regions), (square, regions)
    for reg in regions:
        assert set(reg) == {"bbox", "area"} and all(type(v) is int for v in reg["bbox"]) and reg["area"] > 0
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask"]))))
    assert mask.shape == (256, 320) and body["par"] == pytest.approx((mask > 0).mean())
    truth = square_mask()
    assert (truth & (mask > 0)).sum() / (truth | (mask > 0)).sum() > 0.7
    assert "probability" in body


def test_api_detect_under_concurrent_requests(client):
    from concurrent.futures import ThreadPoolExecutor

    payload = {"image": _b64(squares_image()), "model": "bright.safetensors"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/pal4vst/v1/detect", json=payload), range(16)))
    assert len(answers) == 16
    assert [a.status_code for a in answers] == [200] * 16, answers[0].text
    assert len({a.text for a in answers}) == 1 and len(answers[0].json()["regions"]) == 2


def test_api_score_and_refine(client):
    clean, dirty = np.full((128, 128, 3), 30, np.uint8), squares_image(128, 128, ((30, 30, 70, 80),))
    r = client.post("/pal4vst/v1/score", json={"images": [_b64(dirty), _b64(clean)], "model": "bright.safetensors"})
    assert r.status_code == 200, r.text
    pars, ranking = r.json()["pars"], r.json()["ranking"]
    assert pars[0] > 0.1 and pars[1] == 0.0
    assert [e["index"] for e in ranking] == [1, 0] and ranking[0]["rank"] == 1
    r = client.post("/pal4vst/v1/refine", json={"image": _b64(dirty), "inpainter": "opencv",
                                                "args": {"model": "bright.safetensors", "work_size": 64}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kept"] == body["judged"] == 1 and body["par_before"] > 0.1
    fixed = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"]))))
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask"])))) > 0
    assert mask.any() and (fixed[mask] != dirty[mask]).any()
    assert np.array_equal(fixed[~mask], dirty[~mask])
    r = client.post("/pal4vst/v1/refine", json={"image": _b64(dirty), "args": {"model": "bright.safetensors"}})
    assert r.status_code == 503 and "opencv" in r.json()["detail"]


def test_api_refine_answers_the_report(services):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pal4vst_extension.api import register_routes

    made = []

    def factory(args):
        made.append(args)
        return KnownCandidates()

    app = FastAPI()
    register_routes(app, services, inpainter_factory=factory)
    img, B = two_squares(w=FAR_WIDTH, b=FAR_B), FAR_B
    r = TestClient(app).post("/pal4vst/v1/refine", json={"image": _b64(img), "args": {
        "model": "bright.safetensors", "candidates": 2, "work_size": 64}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert made and made[0].candidates == 2 and made[0].verify
    assert body["kept"] == 1 and body["judged"] == 2 and len(body["report"]) == 2
    verdicts = sorted((e["bbox"][0] < 200, e["accepted"], e["chosen"]) for e in body["report"])
    assert verdicts == [(False, False, 0), (True, True, 1)]  # B reverted, A kept candidate 1
    fixed = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"]))))
    assert np.array_equal(fixed[B[0]:B[2], B[1]:B[3]], img[B[0]:B[2], B[1]:B[3]])
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask"])))) > 0
    assert mask.any() and np.array_equal(fixed[~mask], img[~mask]) and not mask[B[0]:B[2], B[1]:B[3]].any()


def test_json_ready_turns_numpy_into_json_types():
    from pathlib import Path

    from pal4vst_extension.api import json_ready

    out = json_ready({"a": (np.int32(3), np.float32(0.5)), "b": np.arange(3), "c": [np.bool_(True)], "d": Path("/x")})
    assert out == {"a": [3, 0.5], "b": [0, 1, 2], "c": [True], "d": "/x"}
    assert json.dumps(out)


@pytest.mark.parametrize("payload,status,match", [
    ({"image": "!!!not base64!!!", "model": "tiny.safetensors"}, 400, "base64"),
    ({"image": base64.b64encode(b"GIF89a broken").decode(), "model": "tiny.safetensors"}, 400, "could not be decoded"),
    ({"image": None}, 422, ""),
    ({"image": "AAAA", "model": "sd15-artifacts"}, 400, ""),
])
def test_api_bad_requests_are_4xx(client, payload, status, match):
    r = client.post("/pal4vst/v1/detect", json=payload)
    assert r.status_code == status and match in json.dumps(r.json())


GOOD = "GOOD"  # replaced by a real image in the test


@pytest.mark.parametrize("route,body,status,match", [
    ("detect", {"image": "!!!not base64!!!", "model": "tiny.safetensors"}, 400, "not valid base64"),
    ("detect", {"image": base64.b64encode(b"GIF89a broken").decode(), "model": "tiny.safetensors"}, 400,
     "could not be decoded"),
    ("detect", {"model": "tiny.safetensors"}, 422, "image"),
    ("detect", {"image": GOOD, "model": "sd15-artifacts"}, 404, "unknown PAL4VST model 'sd15-artifacts'"),
    ("detect", {"image": GOOD, "model": "broken.pth"}, 422, "model 'broken.pth' cannot be loaded"),
    ("detect", {"image": GOOD, "model": "tiny.safetensors", "threshold": 1.5}, 422, "threshold"),
    ("score", {"images": [], "model": "tiny.safetensors"}, 422, "images must not be empty"),
    ("score", {"images": [GOOD], "model": "nope"}, 404, "unknown PAL4VST model 'nope'"),
    ("refine", {"image": GOOD, "args": {"model": "tiny.safetensors", "denoise": 3}}, 422,
     "PAL4VST denoise must be between 0 and 1"),
    ("refine", {"image": GOOD, "args": {"model": "tiny.safetensors", "colour": 1}}, 422, "unknown PAL4VST arg(s): colour"),
    ("refine", {"image": GOOD, "args": {"model": "tiny.safetensors", "candidates": 9}}, 422,
     "PAL4VST candidates must be between 1 and 8"),
    ("refine", {"image": GOOD, "inpainter": "photoshop", "args": {"model": "tiny.safetensors"}}, 422,
     "inpainter must be 'webui' or 'opencv'"),
    ("refine", {"image": GOOD, "args": {"model": "tiny.safetensors"}}, 503, "the webui inpainter is not available"),
])
def test_api_answers_each_bad_request_with_its_status(client, services, route, body, status, match):
    """Every status code the routes answer, with the message a client needs (never a 500)."""
    (services.model_dirs[0] / "broken.pth").write_bytes(b"PK\x03\x04 not really a checkpoint")
    good = _b64(synthetic_image(32, 32))
    body = {k: (good if v == GOOD else [good if x == GOOD else x for x in v] if isinstance(v, list) else v)
            for k, v in body.items()}
    r = client.post(f"/pal4vst/v1/{route}", json=body)
    assert r.status_code == status, r.text
    assert match in json.dumps(r.json()["detail"]), r.text


def test_api_unknown_model_and_huge_image(client, monkeypatch):
    img = _b64(synthetic_image(32, 32))
    r = client.post("/pal4vst/v1/detect", json={"image": img, "model": "sd15-artifacts"})
    assert r.status_code == 404 and "unknown PAL4VST model" in r.json()["detail"]
    import pal4vst_extension.api as api

    monkeypatch.setattr(api, "MAX_PIXELS", 100)
    r = client.post("/pal4vst/v1/detect", json={"image": img, "model": "tiny.safetensors"})
    assert r.status_code == 413


def test_alwayson_args_are_validated_before_generation(client):
    ok = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"PAL4VST": {"args": [True, {"denoise": 0.3}]}}})
    assert ok.status_code == 200 and ok.json()["scripts"] == ["PAL4VST"]
    bad = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"pal4vst": {"args": [{"denoise": 3}]}}})
    assert bad.status_code == 422 and "denoise must be between" in bad.json()["detail"]
    other = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"ADetailer": {"args": [1]}}})
    assert other.status_code == 200


# ------------------------------------------------------------------------------------- ui-config


def test_stale_ui_config_entries_are_dropped_and_the_rest_kept(tmp_path):
    """An ui-config.json written by an older version (grow -64..128, min area 64 when 16 is the
    default but 64 still fits, an out-of-range value) loses exactly what contradicts the
    declarations; a user's in-range choices and other extensions' keys stay."""
    from pal4vst_extension.controls import control
    from pal4vst_extension.ui_config import refresh

    grow = control(PALArgs, "grow")[1]
    area = control(PALArgs, "min_area")[1]
    denoise = control(PALArgs, "denoise")[1]
    cfg_key = "customscript/pal4vst.py/txt2img"
    old = {
        f"{cfg_key}/{grow['label']}/minimum": -64, f"{cfg_key}/{grow['label']}/maximum": 128,
        f"{cfg_key}/{grow['label']}/step": grow["step"], f"{cfg_key}/{grow['label']}/value": 8,
        f"{cfg_key}/{area['label']}/value": 64,  # the first release's default, written by the webui
        f"{cfg_key}/{denoise['label']}/value": 0.35, f"{cfg_key}/{denoise['label']}/minimum": denoise["minimum"],
        f"{cfg_key}/{denoise['label']}/maximum": denoise["maximum"], f"{cfg_key}/{denoise['label']}/step": denoise["step"],
        "customscript/pal4vst.py/img2img/Denoising strength/value": 7.5,  # out of range
        "pal4vst_tab/Threshold/value": 0.4, "pal4vst_tab/Model/value": "unified",
        f"{cfg_key}/PAL4VST model/value": "unified",
        "txt2img/Sampling steps/value": 20, "customscript/other.py/txt2img/Grow mask (px)/minimum": -64,
    }
    assert grow["minimum"] != -64 and grow["maximum"] != 128  # the declaration did change since
    path = tmp_path / "ui-config.json"
    path.write_text(json.dumps(old))
    removed = refresh(path)
    kept = json.loads(path.read_text())
    assert sorted(removed) == sorted([f"{cfg_key}/{grow['label']}/{f}" for f in ("minimum", "maximum", "value")]
                                     + ["customscript/pal4vst.py/img2img/Denoising strength/value",
                                        f"{cfg_key}/{area['label']}/value", "pal4vst_tab/Model/value",
                                        f"{cfg_key}/PAL4VST model/value"])
    assert kept == {k: v for k, v in old.items() if k not in removed}  # 0.35 and 0.4 were the user's: kept
    assert refresh(path) == []  # nothing more to do
    # once the defaults in force are recorded, 64 is the user's own choice and stays
    path.write_text(json.dumps({**kept, f"{cfg_key}/{area['label']}/value": 64}))
    assert refresh(path) == []
    assert json.loads((tmp_path / "pal4vst-ui-defaults.json").read_text())["min_area"] == PALArgs().min_area
    path.write_text("{ not json")
    assert refresh(path) == [] and path.read_text() == "{ not json"  # a broken file is the webui's to report


# ------------------------------------------------------------------------------------- teach (#22)


def test_tab_teaches_from_corrected_masks(services, taught):
    """The Teach tab's path: PAL's mask shown as an editable layer, the artist's correction added
    to a set (ImageEditor values, and gradio 3's add/erase pads), a fine-tune judged on held-out
    folds, the new model listed and used."""
    from conftest import artifact_iou

    from pal4vst.settings import TeachOptions
    from pal4vst_extension.mask_editing import mask_from_editor, mask_from_sketches
    from pal4vst_extension.tab_actions import example_sets, teach_add, teach_run, teach_show

    import shutil

    shutil.copy(taught["base"], services.model_dirs[0] / "noise_base.safetensors")
    pairs = sorted(taught["examples"].glob("example_*_mask.png"))
    for i, pair in enumerate(pairs):
        image = Image.open(pair.with_name(pair.name.replace("_mask", ""))).convert("RGB")
        truth = np.asarray(Image.open(pair)) > 0
        value, pal_mask, overlay_img, text = teach_show(services, "noise_base.safetensors", image, 0.5)
        assert np.array_equal(mask_from_editor(value, image.size), pal_mask)  # the layer is PAL's mask
        if i % 2:  # the artist paints what PAL missed and erases what it marked wrongly, on the layer
            layer = np.zeros((*truth.shape, 4), np.uint8)
            layer[truth] = (255, 0, 255, 255)
            corrected = mask_from_editor({**value, "layers": [layer]}, image.size)
        else:  # gradio 3: two pads, strokes white on black
            def pad(m):
                return {"image": image, "mask": Image.fromarray(np.where(m, 255, 0).astype(np.uint8))}
            corrected = mask_from_sketches(pal_mask, pad(truth & ~pal_mask), pad(pal_mask & ~truth))
        assert np.array_equal(corrected, truth)
        saved, rows = teach_add(services, "my gen", image, corrected)
        assert saved.startswith(f"saved example_{i + 1:05d}.png")
    assert rows == example_sets(services) and rows[0][:2] == ["my gen", 10]
    steps = []
    summary, per_example, report, new = teach_run(services, "noise_base.safetensors", "my gen",
                                                  TeachOptions(model_name="taught"),
                                                  on_step=lambda s, n, loss, stage: steps.append((s, n, stage)))
    assert steps[-1] == (1200, 1200, "final") and new == "taught.safetensors" and report["better"]
    assert summary.startswith("Better") and len(per_example) == 10  # every example, judged by a fold's model
    assert {row[1] for row in per_example} == {1, 2, 3}
    assert new in services.model_choices()  # every PAL model dropdown lists it after a refresh
    path = services.model_dirs[0] / new
    assert artifact_iou(path, taught["new"]) > artifact_iou(taught["base"], taught["new"]) + 0.25
    assert artifact_iou(path, taught["old"]) > 0.6 * artifact_iou(taught["base"], taught["old"])
    det = services.detector(new)(np.asarray(Image.open(next((taught["new"] / "images" / "val").glob("*.png")))))
    assert det.par > 0
    with pytest.raises(ValueError, match="there is no example set 'nothing'"):
        teach_run(services, "noise_base.safetensors", "nothing", TeachOptions())


def test_tab_adds_a_mask_file_of_every_kind(services, tmp_path):
    """The Teach page's "...or a mask file": each kind people draw, read by the one reader (the
    path gradio 4 hands over, and gradio 3's uploaded-file object)."""
    from conftest import drawn_marks, write_mask_kinds

    from pal4vst_extension.tab_actions import teach_add_file

    marks = drawn_marks()
    drawn = tmp_path / "drawn"
    drawn.mkdir()
    kinds = write_mask_kinds(drawn, marks)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8))
    assert kinds
    for i, (name, path) in enumerate(kinds.items()):
        given = str(path) if i % 2 else type("Upload", (), {"name": str(path)})()  # gradio 4 / gradio 3
        text, rows = teach_add_file(services, "drawn", image, given)
        assert text.startswith("saved") and ("note:" in text) == name.endswith(".jpg")
    saved = sorted((services.model_dirs[0] / "examples" / "drawn").glob("*_mask.png"))
    assert len(saved) == len(kinds) and rows[0][:2] == ["drawn", len(kinds)]
    for path in saved:
        assert ((np.asarray(Image.open(path)) > 127) != marks).mean() < 0.01, path
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 56), dtype=np.uint8)).save(drawn / "photo.png")
    with pytest.raises(ValueError, match="photo.png"):
        teach_add_file(services, "drawn", image, str(drawn / "photo.png"))
