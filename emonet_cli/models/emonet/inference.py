"""Running EmoNet on batches of aligned crops: device and precision choice, landmark decoding."""

from __future__ import annotations

import numpy as np
import torch

from emonet_cli.constants import HEATMAP_SIZE, INPUT_SIZE
from emonet_cli.devices import autocast, out_of_memory_named, resolve_precision, select_device
from emonet_cli.models.emonet.model import EmoNet
from emonet_cli.models.predictions import Predictions

HEATMAP_STRIDE = INPUT_SIZE // HEATMAP_SIZE
# Frames per forward pass on the CPU. Past these the activations (1M values per frame for the
# widest layers) outgrow the last-level cache: measured on 2 cores with 32 MB of L3, float32
# ran at 5.2 frames/s in passes of 1-3 frames and 3.9 at 8; bfloat16 at 10.5 in passes of 2-4
# and 9.8 at 8.
CPU_FRAMES_PER_PASS = {"fp32": 2, "bf16": 4}


def decode_landmarks(heatmap: torch.Tensor) -> torch.Tensor:
    """(B, 68, 64, 64) heatmaps -> (B, 68, 2) x, y of each maximum, at the centre of its
    4x4 block of crop pixels (pixel centres at integer coordinates, as cv2.warpAffine)."""
    width = heatmap.shape[-1]
    flat_index = heatmap.flatten(2).argmax(dim=2)
    xy = torch.stack((flat_index % width, flat_index // width), dim=-1).float()
    return xy * HEATMAP_STRIDE + (HEATMAP_STRIDE - 1) / 2.0


class Predictor:
    """Runs an EmoNet on batches of uint8 RGB crops with the chosen device and precision."""

    family = "emonet"  # its entry in models.registry: the crop its inputs are cut with

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
        with out_of_memory_named(self.device, len(crops)):
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
