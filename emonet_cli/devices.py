"""Where and in which precision a network runs: the device choice, the precision a device
supports, and the autocast context; shared by every network of the package (the detector and
each model family)."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from emonet_cli.constants import PRECISIONS
from emonet_cli.errors import EmonetError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16): there bf16 is
    several times faster than float32, elsewhere it is emulated and slower."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EmonetError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EmonetError(f"device {name!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EmonetError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise EmonetError(f"device {name!r} requested but MPS is not available")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise EmonetError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on CUDA (fp16 on GPUs without bf16) and on CPUs with fast bf16, else fp32."""
    if precision not in PRECISIONS:
        raise EmonetError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise EmonetError("fp16 is not supported on the CPU: use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context of a resolved precision (none for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])
