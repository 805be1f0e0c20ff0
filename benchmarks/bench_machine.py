"""What the benchmark says about the machine: CPU class, cores, how busy they were, and the
matmul peaks and model FLOPs that its ratios are measured against."""

from __future__ import annotations

import os
import time
from pathlib import Path

# Where bf16 matrix work runs in hardware; elsewhere it is emulated (about 1 GFLOP/s on a
# 2-core AVX2 EPYC: a 2048^3 matmul would take 20 s), so its peak is not measured.
BF16_CLASSES = ("AMX", "AVX512-BF16")


def cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    return set((cpuinfo_field("flags") or "").split())


def cpu_class(flags: set[str]) -> str:
    """AMX (bf16 and int8 tiles), AVX512-BF16 (bf16 dot products) or other (bf16 emulated)."""
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return "other"


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The share (0-1) of all cores that were busy over the next `seconds`; Linux only."""

    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]  # all ticks; idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def matmul_peak(precision: str, size: int, device_name: str, seconds: float) -> float:
    """The best GFLOP/s of size^3 matmuls in `precision` over about `seconds`."""
    import torch

    from emonet_cli.devices import select_device

    device = select_device(device_name)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a = torch.rand(size, size, device=device).to(dtype)
    b = torch.rand(size, size, device=device).to(dtype)

    def timed() -> float:
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    timed()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        best = min(best, timed())
    return 2.0 * size**3 / best / 1e9


def model_gflop() -> float:
    """GFLOP of one 256x256 frame through EmoNet, as torch's FlopCounterMode counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from emonet_cli.constants import INPUT_SIZE
    from emonet_cli.models.emonet.model import EmoNet

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        EmoNet(8).eval()(torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE))
    return counter.get_total_flops() / 1e9
