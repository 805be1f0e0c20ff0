"""Where and in which precision a network runs: the device choice, the precision a device
supports, and the autocast context; shared by every network of the package (the detector and
each model family)."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from emonet_cli.constants import PRECISIONS
from emonet_cli.errors import DeviceMemoryError, EmonetError

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
    """The autocast context of a resolved precision; for fp32, IEEE float32 on CUDA too."""
    if precision == "fp32":
        return ieee_fp32() if device.type == "cuda" else contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


@contextlib.contextmanager
def ieee_fp32():
    """float32 that is float32 on CUDA: cuDNN runs float32 convolutions in TF32 (10 bits of
    mantissa) on Ampere and later by default, which moves EmoNet's outputs by about 1e-3 and
    would make `--precision fp32` differ from the CPU's. The flags are process-wide, so they
    are restored after the pass. torch's newer per-backend settings are used where they exist
    (mixing them with the legacy `allow_tf32` flags is an error there)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    matmul = torch.backends.cuda.matmul
    if conv is not None and hasattr(conv, "fp32_precision"):
        saved = conv.fp32_precision, matmul.fp32_precision
        conv.fp32_precision = matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, matmul.fp32_precision = saved
        return
    saved = torch.backends.cudnn.allow_tf32, matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, matmul.allow_tf32 = saved


# torch >= 2.5 names it for every device; before, CUDA's was the only one.
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@contextlib.contextmanager
def out_of_memory_named(device: torch.device, inputs: int):
    """Turn a device's out-of-memory error during a batch into a DeviceMemoryError that names
    the remedy, --batch-size, instead of torch's page of allocator statistics. The cached
    blocks are released, so that whatever runs next on the device starts from a clean pool."""
    try:
        yield
    except OUT_OF_MEMORY:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise DeviceMemoryError(
            f"{device} ran out of memory on a batch of {inputs} faces: "
            "run with a smaller --batch-size"
        ) from None
