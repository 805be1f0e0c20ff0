"""Running EmoNet on batches of aligned crops: device and precision choice, landmark decoding."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emonet_cli.constants import HEATMAP_SIZE, INPUT_SIZE, PRECISIONS
from emonet_cli.errors import EmonetError
from emonet_cli.model import EmoNet

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
HEATMAP_STRIDE = INPUT_SIZE // HEATMAP_SIZE
# Frames per forward pass on the CPU. Past these the activations (1M values per frame for the
# widest layers) outgrow the last-level cache: measured on 2 cores with 32 MB of L3, float32
# ran at 5.2 frames/s in passes of 1-3 frames and 3.9 at 8; bfloat16 at 10.5 in passes of 2-4
# and 9.8 at 8.
CPU_FRAMES_PER_PASS = {"fp32": 2, "bf16": 4}


@dataclass
class Predictions:
    """Model outputs for a batch, as float32 numpy arrays on the host."""

    expression: np.ndarray  # (B, nclass) logits
    valence: np.ndarray  # (B,)
    arousal: np.ndarray  # (B,)
    landmarks: np.ndarray  # (B, 68, 2) x, y of the heatmap maxima in crop pixels
    embedding: np.ndarray  # (B, 256)

    @property
    def probabilities(self) -> np.ndarray:
        return softmax(self.expression)

    def __len__(self) -> int:
        return len(self.valence)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


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


def decode_landmarks(heatmap: torch.Tensor) -> torch.Tensor:
    """(B, 68, 64, 64) heatmaps -> (B, 68, 2) x, y of each maximum, at the centre of its
    4x4 block of crop pixels (pixel centres at integer coordinates, as cv2.warpAffine)."""
    width = heatmap.shape[-1]
    flat_index = heatmap.flatten(2).argmax(dim=2)
    xy = torch.stack((flat_index % width, flat_index // width), dim=-1).float()
    return xy * HEATMAP_STRIDE + (HEATMAP_STRIDE - 1) / 2.0


class Predictor:
    """Runs an EmoNet on batches of uint8 RGB crops with the chosen device and precision."""

    def __init__(self, model: EmoNet, device: str | torch.device = "auto", precision: str = "auto"):
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.nclass = model.nclass
        self.classes = model.classes  # names and colours of the outputs
        # channels-last lets oneDNN / cuDNN pick their fastest convolution kernels.
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.pin_memory = self.device.type == "cuda"
        self.frames_per_pass = None  # the whole batch at once
        if self.device.type == "cpu":
            self.frames_per_pass = CPU_FRAMES_PER_PASS[self.precision]

    def _autocast(self):
        return autocast(self.device, self.precision)

    def __call__(self, crops: np.ndarray) -> Predictions:
        """crops: (B, 256, 256, 3) uint8 RGB, as produced by align.crop_face."""
        batch = torch.from_numpy(np.ascontiguousarray(crops))
        if self.pin_memory:
            batch = batch.pin_memory()
        # NHWC -> NCHW view is already channels-last in memory: no copy before the transfer.
        batch = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        parts = [self._run(chunk) for chunk in batch.split(self.frames_per_pass or len(batch))]
        return Predictions(*(np.concatenate(arrays) for arrays in zip(*parts)))

    def _run(self, batch: torch.Tensor) -> tuple[np.ndarray, ...]:
        """One forward pass: NCHW uint8 (channels-last in memory) -> Predictions' fields."""
        with torch.inference_mode(), self._autocast():
            out = self.model(batch.float().div_(255.0))
            landmarks = decode_landmarks(out.heatmap)
        return (
            out.expression.float().cpu().numpy(),
            out.valence.float().cpu().numpy(),
            out.arousal.float().cpu().numpy(),
            landmarks.cpu().numpy(),
            out.embedding.float().cpu().numpy(),
        )
