"""Read checkpoint files safely, whatever their origin, build the model, write our safetensors.

How foreign state dicts map onto the model is :mod:`pal4vst.model.layouts`. Supported files,
recognised from their content (never their name):

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
from ..files import atomic_write
from .errors import CheckpointError
from .layouts import classify, filter_state_dict, infer_config, read_preprocessing, strip_prefix
from .segmenter import ModelConfig, PALSegmenter

log = logging.getLogger(__name__)

SAFETENSORS_FORMAT = "pal4vst"


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


def load_torch_file(path: str | Path) -> object:
    """A ``torch.save`` file's content, weights-only: tensors, containers and numbers (a training
    state with its optimiser included); any other object becomes an inert placeholder, and a file
    that asks to run code is refused."""
    path = Path(path)
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
    obj = load_torch_file(path)
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
# Building the model


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
        if kind != "torchscript" or classify(strip_prefix(sd)) == "backbone":
            raise CheckpointError(f"{path}: {e}") from None
        return _load_graph(path, sha, str(e)[:300])


def save_safetensors(model: PALSegmenter, path: str | Path, *, source_sha256: str = "", source_name: str = "",
                     extra: dict[str, str] | None = None) -> Path:
    """Write ``model`` as safetensors with a metadata header (config, classes, normalisation, source,
    and ``extra`` strings); low-rank adapters are folded into their layers (the released layout)."""
    from safetensors.torch import save_file

    path = Path(path)
    config = model.config
    from .lora import folded_state_dict

    sd = {k: v.detach().contiguous().cpu() for k, v in folded_state_dict(model).items()
          if not k.endswith("num_batches_tracked")}
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
        **(extra or {}),
    }
    return atomic_write(path, lambda tmp: save_file(sd, str(tmp), metadata=meta))


def check_convert_target(src: str | Path | None, dst: str | Path, overwrite: bool = False) -> None:
    """A ValueError when ``dst`` is no ``.safetensors`` file, is ``src`` itself, or exists and
    ``overwrite`` is not given: a conversion writes only safetensors, never over its input, and
    over another file only when asked."""
    dst = Path(dst)
    if src is not None and dst.exists() and Path(src).exists() and dst.resolve() == Path(src).resolve():
        raise ValueError(f"the output {dst} is the input: convert never overwrites its input; choose another name")
    if dst.suffix.lower() != ".safetensors":
        raise ValueError(f"the output {dst} must be a .safetensors file (convert writes only safetensors)")
    if dst.exists() and not overwrite:
        raise ValueError(f"the output {dst} exists; choose another name, or --overwrite to replace it")


def convert(src: str | Path, dst: str | Path, overwrite: bool = False) -> Path:
    """Convert a release file (MMSeg .pth or TorchScript .pt) to our safetensors, keeping the aux
    head; never over ``src``, over another file only with ``overwrite`` (:func:`check_convert_target`)."""
    check_convert_target(src, dst, overwrite)
    loaded = load_checkpoint(src, with_aux=True)
    if loaded.output != "logits":
        raise CheckpointError(f"{src}: this TorchScript cannot be converted (its weights do not match the architecture)")
    return save_safetensors(loaded.module, dst, source_sha256=file_sha256(src), source_name=Path(src).name)
