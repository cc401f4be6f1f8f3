"""Load PAL4VST checkpoints safely, whatever their origin, and write our safetensors format.

Supported files, recognised from their content (never their name):

* MMSegmentation checkpoints as released (``{"meta", "state_dict", ...}``);
* mmdeploy TorchScript ``end2end.pt``: mmdeploy traces the whole ``EncoderDecoder``, so the file
  holds the weights under MMSegmentation's names plus the ``data_preprocessor`` mean/std (read as
  the preprocessing) and the auxiliary head. The weights are moved into the eager model, which
  gives soft probabilities; when they do not map, the TorchScript graph itself runs (probed once
  at load) and only a 0/1 map is available;
* our safetensors files, whose metadata header holds the config and the source's sha256.

Checkpoints are untrusted: pickles are read with ``torch.load(weights_only=True)``. Objects a
training run leaves beside the weights (MMEngine's message hub, numpy arrays) are replaced by
inert placeholders, so no code named by the file is ever imported or run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from .segmenter import ModelConfig, PALSegmenter

log = logging.getLogger(__name__)

SAFETENSORS_FORMAT = "pal4vst"
_ANCHOR = "backbone.patch_embed.projection.weight"
_STAGE_KEY = re.compile(r"^backbone\.stages\.(\d+)\.blocks\.(\d+)\.")
# Tensors that are no weights, dropped by name: MMSegmentation's data preprocessor (mmdeploy's
# trace keeps its non-persistent buffers; read by :func:`read_preprocessing`) and the relative
# position index every Swin recomputes. Any other unknown tensor is an error, never ignored.
_PREPROCESSOR = ("data_preprocessor.mean", "data_preprocessor.std")
_DERIVED_SUFFIX = "relative_position_index"


class CheckpointError(ValueError):
    """A file that is not a usable PAL4VST checkpoint; the message says why and what to do."""


@dataclass
class LoadedModel:
    """A ready-to-run model: ``module`` maps normalised ``[B, 3, S, S]`` input to ``[B, C, S, S]``
    logits (``output == "logits"``) or to a ``[B, 1, S, S]`` label map (``output == "labels"``)."""

    module: nn.Module
    config: ModelConfig
    output: str
    source: str
    kind: str
    sha256: str


# --------------------------------------------------------------------------------------------
# Reading files


def sniff(path: Path) -> str:
    """``safetensors``, ``torchscript``, ``torch`` (zip), ``torch-legacy``, ``empty`` or ``unknown``."""
    size = path.stat().st_size
    if size == 0:
        return "empty"
    with path.open("rb") as f:
        head = f.read(16)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "truncated"
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        return "torch"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in (2, 3, 4, 5):
        return "torch-legacy"
    if len(head) >= 9:
        n = int.from_bytes(head[:8], "little")
        if 0 < n < size and head[8:9] == b"{":
            return "safetensors"
    return "unknown"


class _Placeholder:
    """Stands in for any non-tensor object a checkpoint carries; runs nothing, keeps nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __call__(self, *args, **kwargs):
        return _Placeholder()


def _placeholder_for(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (_Placeholder,), {"__module__": "pal4vst.placeholder"})


def _torch_load(path: Path) -> object:
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy (non-zip) files cannot be scanned; weights_only still guards them
        unsafe = []
    stubs = [(_placeholder_for(n), n) for n in unsafe]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=stubs == [] and _is_zip(path))
    except pickle.UnpicklingError as e:
        blocked = re.search(r"GLOBAL (\S+)", str(e))
        raise CheckpointError(
            f"{path} asks to run code while loading ({blocked.group(1) if blocked else 'a blocked global'}), which "
            "PAL4VST refuses: checkpoints are untrusted files. If you trust its origin, re-save only its weights "
            "with torch.save(model.state_dict(), path) and load that."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is truncated or corrupt ({msg}); delete it and download it again.") from e


def _is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _find_state_dict(obj: object) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, unwrapping ``state_dict``/``model``/``module`` containers."""
    if isinstance(obj, _Placeholder):
        raise CheckpointError(
            "the file holds a pickled Python object (e.g. torch.save(model)), not a dictionary of weights; "
            "PAL4VST does not run code from checkpoints. Re-save it with torch.save(model.state_dict(), path)."
        )
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "module", "net"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                return _find_state_dict(inner)
        return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    raise CheckpointError("the file holds no dictionary of tensors (not a model checkpoint)")


def read_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str], str]:
    """Read a checkpoint's tensors and metadata: ``(state_dict, metadata, kind)``.

    For TorchScript files the state dict is that of the scripted module; the module itself is
    available through :func:`load_torchscript`.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; pass the checkpoint file inside it (.pth, .pt or .safetensors)")
    kind = sniff(path)
    if kind == "empty":
        raise CheckpointError(f"{path} is empty (0 bytes): the download was interrupted; delete it and download again")
    if kind == "truncated":
        raise CheckpointError(f"{path} is truncated or corrupt (incomplete zip archive); delete it and download again")
    if kind == "unknown":
        raise CheckpointError(
            f"{path} is not a model file PAL4VST can read (expected a PyTorch .pth/.pt, a TorchScript .pt or a "
            ".safetensors file)"
        )
    if kind == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                return {k: f.get_tensor(k) for k in f.keys()}, meta, kind
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path} is a truncated or corrupt safetensors file ({e}); download it again") from e
    if kind == "torchscript":
        return {k: v.detach() for k, v in load_torchscript(path).state_dict().items()}, {}, kind
    obj = _torch_load(path)
    meta: dict[str, str] = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping):
        m = obj["meta"]
        if isinstance(m.get("config"), str):
            meta["mmseg_config"] = m["config"]
        classes = (m.get("dataset_meta") or {}).get("classes") if isinstance(m.get("dataset_meta"), Mapping) else None
        if isinstance(classes, (list, tuple)):
            meta["classes"] = json.dumps([str(c) for c in classes])
    return _find_state_dict(obj), meta, kind


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """Load a TorchScript archive on the CPU. TorchScript runs its own restricted interpreter,
    not Python's pickle; only its tensors are used when they map onto the eager model."""
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise CheckpointError(f"{path} is a damaged TorchScript archive ({str(e).splitlines()[0]})") from e


# --------------------------------------------------------------------------------------------
# Mapping foreign state dicts onto ours


def _strip_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for key in sd:
        if key.endswith(_ANCHOR) and key != _ANCHOR:
            prefix = key[: -len(_ANCHOR)]
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def classify(sd: Mapping[str, torch.Tensor]) -> str:
    """``segmenter``, ``backbone`` (an ImageNet Swin) or ``unknown``."""
    keys = list(sd)
    if any(k.startswith("backbone.") for k in keys) and any(k.startswith("decode_head.") for k in keys):
        return "segmenter"
    swin_like = ("layers.0.blocks.0.attn.qkv.weight", "stages.0.blocks.0.attn.w_msa.qkv.weight",
                 "backbone.stages.0.blocks.0.attn.w_msa.qkv.weight", "patch_embed.proj.weight")
    if any(k.endswith(s) for k in keys for s in swin_like):
        return "backbone"
    return "unknown"


def filter_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an MMSegmentation / mmdeploy / our own state dict to :class:`PALSegmenter` names."""
    out = _strip_prefix(dict(sd))
    kind = classify(out)
    if kind == "backbone":
        raise CheckpointError(
            "this is a Swin backbone checkpoint (ImageNet classification weights, no segmentation head): it "
            "cannot find artifacts by itself. Use it to initialise training (python -m training.train --init "
            "FILE), or load a PAL4VST release: unified, stylegan2 or portrait_shadow_removal."
        )
    if kind == "unknown":
        sample = ", ".join(list(out)[:4]) or "none"
        raise CheckpointError(
            "this file holds no PAL4VST segmenter weights (expected keys such as "
            f"'{_ANCHOR}' and 'decode_head.conv_seg.weight'; found e.g. {sample})."
        )
    return {k: v for k, v in out.items() if k not in _PREPROCESSOR and not k.endswith(_DERIVED_SUFFIX)}


def read_preprocessing(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, float, float]]:
    """``{"mean": ..., "std": ...}`` from MMSegmentation's ``data_preprocessor`` buffers, where a
    file carries them (mmdeploy's TorchScript does); empty otherwise."""
    out = _strip_prefix(dict(sd))
    found = {}
    for key in _PREPROCESSOR:
        t = out.get(key)
        if t is not None and t.numel() == 3:
            found[key.rsplit(".", 1)[1]] = tuple(round(float(v), 6) for v in t.flatten())
    return found


def _window_and_heads(table: torch.Tensor) -> tuple[int, int]:
    n, heads = table.shape
    side = math.isqrt(n)
    return (side + 1) // 2, heads


def infer_config(sd: Mapping[str, torch.Tensor], meta: Mapping[str, str] | None = None) -> ModelConfig:
    """The architecture of a (filtered) state dict, read from its tensors' shapes."""
    meta = meta or {}
    if "config" in meta:  # our own files carry the full config
        return ModelConfig.from_json(meta["config"])
    try:
        proj = sd[_ANCHOR]
        embed, patch = proj.shape[0], proj.shape[2]
        blocks: dict[int, int] = {}
        for k in sd:
            m = _STAGE_KEY.match(k)
            if m:
                s, b = int(m.group(1)), int(m.group(2))
                blocks[s] = max(blocks.get(s, 0), b + 1)
        depths = tuple(blocks[i] for i in range(len(blocks)))
        wh = [_window_and_heads(sd[f"backbone.stages.{i}.blocks.0.attn.w_msa.relative_position_bias_table"])
              for i in range(len(depths))]
        fc1 = sd["backbone.stages.0.blocks.0.ffn.layers.0.0.weight"]
        seg = sd["decode_head.conv_seg.weight"]
        n_pool = len({k.split(".")[2] for k in sd if k.startswith("decode_head.psp_modules.")})
    except KeyError as e:
        raise CheckpointError(f"the segmenter weights are incomplete: missing {e.args[0]}") from None
    num_classes = seg.shape[0]
    if num_classes != 2:
        raise CheckpointError(
            f"this checkpoint segments {num_classes} classes (a general segmentation model, e.g. Cityscapes or "
            "ADE20K); PAL4VST models segment 2 (background, artifact). Use a PAL4VST release or fine-tune one "
            "with training/."
        )
    aux_seg = sd.get("auxiliary_head.conv_seg.weight")
    aux_in = sd.get("auxiliary_head.convs.0.conv.weight")
    stage_ch = [embed * 2**i for i in range(len(depths))]
    pool_scales = (1, 2, 3, 6) if n_pool == 4 else _pool_scales_from_meta(meta, n_pool)
    classes = tuple(json.loads(meta["classes"])) if "classes" in meta else ("background", "artifact")
    return ModelConfig(
        embed_dim=embed, depths=depths, num_heads=tuple(h for _, h in wh), window=wh[0][0], patch=patch,
        mlp_ratio=fc1.shape[0] / embed, qkv_bias="backbone.stages.0.blocks.0.attn.w_msa.qkv.bias" in sd,
        head_channels=seg.shape[1], pool_scales=pool_scales, aux=aux_seg is not None,
        aux_channels=aux_seg.shape[1] if aux_seg is not None else 256,
        aux_index=stage_ch.index(aux_in.shape[1]) if aux_in is not None and aux_in.shape[1] in stage_ch else 2,
        num_classes=num_classes, classes=classes,
    )


def _pool_scales_from_meta(meta: Mapping[str, str], n: int) -> tuple[int, ...]:
    m = re.search(r"pool_scales['\"]?\s*[:=]\s*[\[(]([\d,\s]+)[\])]", meta.get("mmseg_config", ""))
    if m:
        scales = tuple(int(s) for s in m.group(1).split(",") if s.strip())
        if len(scales) == n:
            return scales
    raise CheckpointError(f"the decode head has {n} pooling branches and the file does not say their scales")


def build_from_state_dict(sd: Mapping[str, torch.Tensor], config: ModelConfig, source: str = "") -> PALSegmenter:
    """A :class:`PALSegmenter` holding ``sd``; mismatched keys are named in the error."""
    model = PALSegmenter(config)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in own.items() if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}")
        where = f"{source}: " if source else ""
        raise CheckpointError(f"{where}the weights do not match the PAL4VST architecture ({'; '.join(parts)})")
    model.load_state_dict(sd, strict=False)
    return model.eval()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _GraphModule(nn.Module):
    """Runs a TorchScript segmenter whose weights do not map onto the eager model: ``[B, C, H, W]``
    logits (mmdeploy's ``with_argmax=False``) pass through, label maps become ``[B, 1, H, W]``."""

    def __init__(self, ts: torch.jit.ScriptModule, output: str) -> None:
        super().__init__()
        self.ts = ts
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ts(x.float())
        if self.output == "logits":
            return out.float()
        return out.reshape(out.shape[0], 1, *out.shape[-2:])


def _graph_output(path: Path, ts: torch.jit.ScriptModule, size: int) -> str:
    """``labels`` or ``logits``: what the graph answers to one ``1x3xSxS`` input. Anything else is
    not a segmenter PAL4VST can use."""
    try:
        with torch.inference_mode():
            out = ts(torch.zeros(1, 3, size, size))
    except Exception as e:  # noqa: BLE001 - a graph raises whatever its ops raise
        raise CheckpointError(f"{path}: the TorchScript graph fails on a 1x3x{size}x{size} input "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape in ((1, 1, size, size), (1, size, size)) and not out.is_floating_point():
        return "labels"
    if shape == (1, 2, size, size) and out.is_floating_point():
        return "logits"
    got = f"a tensor of shape {shape} ({out.dtype})" if shape else type(out).__name__
    raise CheckpointError(f"{path} is a TorchScript model, but not a PAL4VST segmenter: for a 1x3x{size}x{size} "
                          f"input it returns {got}, not a 2-class label map or logits")


def _load_graph(path: Path, sha: str, reason: str) -> LoadedModel:
    config = ModelConfig()
    ts = load_torchscript(path).eval()
    output = _graph_output(path, ts, config.input_size)
    soft = "" if output == "logits" else " It outputs labels only, so the probability map is the 0/1 mask."
    log.warning("%s: TorchScript weights do not map onto the eager model (%s); running the graph itself.%s",
                path, reason, soft)
    return LoadedModel(_GraphModule(ts, output).eval(), config, output, str(path), "torchscript", sha)


def _load_eager(path: Path, sd: dict[str, torch.Tensor], meta: dict[str, str], kind: str, sha: str,
                with_aux: bool) -> LoadedModel:
    prep = read_preprocessing(sd)
    sd = filter_state_dict(sd)
    config = infer_config(sd, meta)
    differ = {k: v for k, v in prep.items() if not all(math.isclose(a, b, rel_tol=1e-5)
                                                       for a, b in zip(v, getattr(config, k)))}
    if differ:  # float32 buffers of the release's own values are not a difference
        log.warning("%s: its data_preprocessor normalises with %s, not the release's mean %s, std %s; using the "
                    "file's", path, ", ".join(f"{k} {v}" for k, v in differ.items()), config.mean, config.std)
        config = dataclasses.replace(config, **differ)
    if not with_aux:
        config = dataclasses.replace(config, aux=False)
        sd = {k: v for k, v in sd.items() if not k.startswith("auxiliary_head.")}
    return LoadedModel(build_from_state_dict(sd, config), config, "logits", str(path), kind, sha)


def load_checkpoint(path: str | Path, *, with_aux: bool = False) -> LoadedModel:
    """Load any supported PAL4VST checkpoint into an eval-mode model on the CPU.

    ``with_aux`` keeps the FCN auxiliary head (training); inference does not need it. A
    TorchScript file whose weights do not map onto the eager model runs as its own graph; only a
    file that is no segmenter at all is refused.
    """
    path = Path(path)
    sd, meta, kind = read_file(path)
    if kind == "safetensors" and meta.get("format") not in (None, SAFETENSORS_FORMAT):
        log.info("%s: safetensors written by %r, reading it as a plain state dict", path, meta.get("format"))
    sha = meta.get("source_sha256", "")
    try:
        return _load_eager(path, sd, meta, kind, sha, with_aux)
    except CheckpointError as e:
        if kind != "torchscript" or classify(_strip_prefix(sd)) == "backbone":
            raise CheckpointError(f"{path}: {e}") from None
        return _load_graph(path, sha, str(e)[:300])


def save_safetensors(model: PALSegmenter, path: str | Path, *, source_sha256: str = "", source_name: str = "") -> Path:
    """Write ``model`` as safetensors with a metadata header (config, classes, normalisation, source)."""
    from safetensors.torch import save_file

    path = Path(path)
    config = model.config
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    meta = {
        "format": SAFETENSORS_FORMAT,
        "pal4vst_version": __version__,
        "config": config.to_json(),
        "classes": json.dumps(list(config.classes)),
        "mean": json.dumps(list(config.mean)),
        "std": json.dumps(list(config.std)),
        "input_size": str(config.input_size),
        "source_sha256": source_sha256,
        "source_name": source_name,
    }
    tmp = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert a release file (MMSeg .pth or TorchScript .pt) to our safetensors, keeping the aux head."""
    loaded = load_checkpoint(src, with_aux=True)
    if loaded.output != "logits":
        raise CheckpointError(f"{src}: this TorchScript cannot be converted (its weights do not match the architecture)")
    return save_safetensors(loaded.module, dst, source_sha256=file_sha256(src), source_name=Path(src).name)
