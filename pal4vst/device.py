"""Where and in what precision to run: the same choice for detection, inpainting and training."""

from __future__ import annotations

import torch

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


class DeviceError(ValueError):
    """A device this machine or this PyTorch cannot run on; the message says why and what to choose."""


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU. A named device is checked here, so that
    asking for one the machine lacks is one clear :class:`DeviceError`, not a failure deep in torch."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise DeviceError(f"{device!r} is no device PyTorch knows; choose auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        _check_cuda(dev)
    elif dev.type == "mps" and not _mps_available():
        raise DeviceError(f"{device!r} is not available: Apple's MPS backend needs a Mac with Apple silicon and a "
                          "PyTorch built with it; choose cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{device!r} is not supported; choose auto, cpu, cuda, cuda:N or mps")
    return dev


def _check_cuda(dev: torch.device) -> None:
    name = str(dev)
    if not torch.cuda.is_available():
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            why = f"this PyTorch ({torch.__version__}) is built without CUDA"
        else:
            why = "PyTorch finds no NVIDIA GPU or driver on this machine"
        raise DeviceError(f"{name!r} is not available: {why}; choose cpu or auto")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        have = "1 CUDA device (cuda:0)" if count == 1 else f"{count} CUDA devices (cuda:0 to cuda:{count - 1})"
        raise DeviceError(f"{name!r} is not available: this machine has {have}")


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it (else fp16) and on CPUs with native bf16; else fp32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in (None, "auto"):
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use auto, fp32, fp16 or bf16")
        return DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return torch.float32
