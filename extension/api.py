"""FastAPI routes ``/pal4vst/v1/*`` and the validation of ``alwayson_scripts`` args.

Bad requests get a 4xx with a clear ``detail``: 400 for a body that is not an image, 404 for an
unknown model, 413 for an image over the size limit, 422 for invalid fields or script args,
503 when no inpainter is available. The routes work under ``--nowebui`` (the API-only app).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import FastAPI, HTTPException
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from pal4vst.model.checkpoint import CheckpointError
from pal4vst.images import MAX_PIXELS, pil_to_rgb
from pal4vst.options import OptionError, declaration
from pal4vst.render import mask_to_uint8, prob_to_uint8
from pal4vst.settings import DetectOptions, ModelSource
from pal4vst.scoring.ranking import rank
from pal4vst.model.weights import WeightsNotFound

from .args import SCRIPT_TITLE, ArgsError, PALArgs
from .pipeline import auto_fix
from .services import Services, UnknownModel

MAX_BODY_BYTES = 64 * 1024 * 1024
InpainterFactory = Callable[[PALArgs], Any]


def _field(cls: type, name: str) -> Any:
    """A request field with the core declaration's default, bounds and help."""
    d = declaration(cls, name)
    return Field(d.default, ge=d.spec.min, le=d.spec.max, description=d.describe())


class DetectRequest(BaseModel):
    image: str = Field(..., description="base64 image (PNG/JPEG/WebP), optionally a data: URL")
    model: str = _field(ModelSource, "model")
    threshold: float = _field(DetectOptions, "threshold")
    mode: str = _field(DetectOptions, "mode")
    return_probability: bool = False


class ScoreRequest(BaseModel):
    images: list[str] = Field(..., description="base64 images")
    model: str = _field(ModelSource, "model")
    threshold: float = _field(DetectOptions, "threshold")


class RefineRequest(BaseModel):
    image: str
    args: dict = Field(default_factory=dict, description="PAL4VST args (see /pal4vst/v1/args)")
    inpainter: str = Field("webui", description="webui (the loaded SD model) or opencv (no model needed)")


def decode_image(data: str) -> Image.Image:
    """A PIL image from base64 (data URLs accepted); 400/413 on bad input."""
    if "," in data[:100] and data.startswith("data:"):
        data = data.split(",", 1)[1]
    if len(data) > MAX_BODY_BYTES * 4 // 3:
        raise HTTPException(413, f"image is larger than {MAX_BODY_BYTES // 2**20} MiB")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image is not valid base64") from None
    try:
        img = Image.open(io.BytesIO(raw))
        if img.size[0] * img.size[1] > MAX_PIXELS:
            raise HTTPException(413, f"image is {img.size[0]}x{img.size[1]}, over the {MAX_PIXELS:,} pixel limit")
        img.load()
    except HTTPException:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise HTTPException(400, f"image could not be decoded ({type(e).__name__}: {e})") from None
    return img


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into plain JSON types.
    Every route answers through it: FastAPI/pydantic refuse numpy types with a 500."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def encode_png(arr_or_img: np.ndarray | Image.Image) -> str:
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _detector(services: Services, model: str, threshold: float | None = None, mode: str | None = None):
    try:
        return services.detector(model, threshold=threshold, mode=mode)
    except UnknownModel as e:
        raise HTTPException(404, str(e)) from None
    except WeightsNotFound as e:
        raise HTTPException(404, str(e)) from None
    except CheckpointError as e:
        raise HTTPException(422, f"model {model!r} cannot be loaded: {e}") from None
    except OptionError as e:
        raise HTTPException(422, str(e)) from None


def register_routes(app: FastAPI, services: Services, inpainter_factory: Optional[InpainterFactory] = None) -> None:
    """Add ``/pal4vst/v1/{models,args,detect,score,refine}`` to ``app``."""

    @app.get("/pal4vst/v1/models")
    def models() -> dict:
        return json_ready({"models": services.model_choices(), "default": declaration(ModelSource, "model").default,
                      "folders": services.model_dirs})

    @app.get("/pal4vst/v1/args")
    def args_doc() -> dict:
        """The script args in order, with defaults: for alwayson_scripts {"PAL4VST": {"args": [...]}}."""
        return json_ready({"title": SCRIPT_TITLE, "order": PALArgs.names(), "defaults": PALArgs().to_dict()})

    @app.post("/pal4vst/v1/detect")
    def detect(req: DetectRequest) -> dict:
        rgb = pil_to_rgb(decode_image(req.image))
        det = _detector(services, req.model, req.threshold, req.mode)(rgb)
        regions = det.regions(fill_holes=True)
        out = {"width": det.size[0], "height": det.size[1], "par": det.par, "model": req.model,
               "mask": encode_png(mask_to_uint8(det.mask)),
               "regions": [{"bbox": list(r.bbox), "area": r.area} for r in regions]}
        if req.return_probability:
            out["probability"] = encode_png(prob_to_uint8(det.prob))
        return json_ready(out)

    @app.post("/pal4vst/v1/score")
    def score(req: ScoreRequest) -> dict:
        if not req.images:
            raise HTTPException(422, "images must not be empty")
        detector = _detector(services, req.model, req.threshold)
        pars = [detector(pil_to_rgb(decode_image(s))).par for s in req.images]
        return json_ready({"pars": pars, "ranking": [{"rank": r.rank, "index": r.index, "par": r.par} for r in rank(pars)]})

    @app.post("/pal4vst/v1/refine")
    def refine(req: RefineRequest) -> dict:
        try:
            args = PALArgs.parse({**req.args, "enabled": True})
        except ArgsError as e:
            raise HTTPException(422, str(e)) from None
        img = decode_image(req.image)
        if req.inpainter == "opencv":
            from pal4vst.zoom.inpaint import OpenCVInpainter

            inpainter = OpenCVInpainter()
        elif req.inpainter == "webui":
            if inpainter_factory is None:
                raise HTTPException(503, "the webui inpainter is not available here; pass inpainter: opencv")
            inpainter = inpainter_factory(args)
        else:
            raise HTTPException(422, "inpainter must be 'webui' or 'opencv'")
        detector = _detector(services, args.model, args.threshold)
        try:
            res = auto_fix(img.convert("RGB"), args, detector, inpainter, seed=max(args.seed, 0))
        except HTTPException:
            raise
        except Exception as e:  # noqa: BLE001 - e.g. the webui has no SD model loaded
            raise HTTPException(503, f"inpainting failed: {type(e).__name__}: {e}") from None
        return json_ready({"image": encode_png(res.image), "mask": encode_png(res.mask), "par_before": res.par_before,
                           "par_after": res.par_after, "kept": res.kept, "judged": res.judged,
                           "report": res.report_dicts()})


class AlwaysOnArgsValidator:
    """ASGI middleware: rejects ``/sdapi/v1/txt2img|img2img`` requests whose PAL4VST script args
    are invalid with a 422 naming the problem, before any generation starts."""

    PATHS = ("/sdapi/v1/txt2img", "/sdapi/v1/img2img")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.PATHS:
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        error = self.check(body)
        if error:
            payload = json.dumps({"error": "ArgsError", "detail": error}).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})
            return None
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    def check(body: bytes) -> str | None:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return None  # the API itself answers malformed JSON
        scripts = data.get("alwayson_scripts") if isinstance(data, dict) else None
        if not isinstance(scripts, dict):
            return None
        entry = next((v for k, v in scripts.items() if k.lower() == SCRIPT_TITLE.lower()), None)
        if entry is None:
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("args", []), list):
            return 'alwayson_scripts.PAL4VST must be {"args": [...]}'
        try:
            PALArgs.parse(entry.get("args", []))
        except ArgsError as e:
            return str(e)
        return None


def install_args_validator(app) -> None:
    """Add :class:`AlwaysOnArgsValidator` to a FastAPI app, also one that is already serving
    (the webui calls ``on_app_started`` after its server started, when Starlette refuses
    ``add_middleware``): then the built middleware stack is wrapped."""
    try:
        app.add_middleware(AlwaysOnArgsValidator)
        return
    except RuntimeError:
        pass
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    app.middleware_stack = AlwaysOnArgsValidator(app.middleware_stack)
