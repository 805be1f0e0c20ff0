"""MediaPipe's BlazeFace "back" face detector in PyTorch, and `BlazeFace`, which runs it.

The network is the graph of face_detection_back.tflite (MediaPipe, Apache-2.0): a 5x5
stride-2 convolution to 24 channels, 31 BlazeBlocks (a 3x3 depthwise and a 1x1 convolution
added to the block's input, then ReLU) in four stages of 128, 64, 32 and 16 pixels, each
entered by a stride-2 block whose shortcut is max-pooled and zero-padded to the new width, a
last stride-2 depthwise-separable convolution to 8x8, and two heads: scores and box
regressors for 2 anchors per cell of the 16x16 map and 6 per cell of the 8x8 map. TFLite pads
"SAME", which for stride 2 puts the extra row and column at the end; PyTorch's symmetric
padding does not, so those layers pad by hand.

The weights ship with the package (data/blazeface_back.npz, converted from the TFLite file by
weights/convert_blazeface.py; see data/NOTICE) and are checked against WEIGHTS_SHA256.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emonet_cli.devices import autocast, resolve_precision, select_device
from emonet_cli.errors import WeightsError
from emonet_cli.faces.detection.postprocess import (
    ANCHOR_GRIDS,
    INPUT_SIZE,
    IOU_THRESHOLD,
    MIN_SCORE,
    NUM_ANCHORS,
    NUM_COORDS,
    detections_from_outputs,
    weighted_nms,
)

WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "blazeface_back.npz"
WEIGHTS_SHA256 = "77625313608658b43125721eb7700e46a70b35470ebf3451ec156e5e5334ba3c"
STEM_CHANNELS = 24
# (input channels, output channels, stride) of each BlazeBlock, in order.
BLOCKS = (
    [(24, 24, 1)] * 7
    + [(24, 24, 2)]
    + [(24, 24, 1)] * 7
    + [(24, 48, 2)]
    + [(48, 48, 1)] * 7
    + [(48, 96, 2)]
    + [(96, 96, 1)] * 7
)
FEATURES = BLOCKS[-1][1]
(_, ANCHORS_PER_CELL_16), (_, ANCHORS_PER_CELL_8) = ANCHOR_GRIDS  # the 16x16 and 8x8 maps
DEFAULT_BATCH_SIZE = 16
# Frames per forward pass on the CPU. Measured on 2 cores (fp32, channels-last, network only),
# in frames/s for passes of 1, 2, 4, 8 and 16: 53, 77, 103, 106, 54 with 2 threads and
# 51, 61, 55, 42, 32 with 1; larger passes outgrow the cache.
CPU_FRAMES_PER_PASS = 4


def pad_same_stride2(x: torch.Tensor) -> torch.Tensor:
    """TFLite's SAME padding for a 3x3 stride-2 layer on an even size: one zero row and column
    after the end, none before."""
    return F.pad(x, (0, 1, 0, 1))


class BlazeBlock(nn.Module):
    """relu(pointwise(depthwise(x)) + shortcut(x)); the shortcut is the identity, or for
    stride 2 a 2x2 max-pool, zero-padded with channels when the block widens."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.extra_channels = channels_out - channels_in
        padding = 1 if stride == 1 else 0
        self.depthwise = nn.Conv2d(
            channels_in, channels_in, 3, stride=stride, padding=padding, groups=channels_in
        )
        self.pointwise = nn.Conv2d(channels_in, channels_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            branch = self.depthwise(pad_same_stride2(x))
            x = F.max_pool2d(x, 2)
        else:
            branch = self.depthwise(x)
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(self.pointwise(branch) + x)


def per_anchor(head: torch.Tensor, values: int) -> torch.Tensor:
    """(N, anchors_per_cell * values, H, W) -> (N, H * W * anchors_per_cell, values), anchors
    in TFLite's row-major cell order."""
    return head.permute(0, 2, 3, 1).reshape(len(head), -1, values)


class BlazeFaceNet(nn.Module):
    """(N, 3, 256, 256) RGB in [-1, 1] -> box regressors (N, 896, 16) and raw scores (N, 896)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, STEM_CHANNELS, 5, stride=2)
        self.blocks = nn.Sequential(*(BlazeBlock(*spec) for spec in BLOCKS))
        self.final_depthwise = nn.Conv2d(FEATURES, FEATURES, 3, stride=2, groups=FEATURES)
        self.final_pointwise = nn.Conv2d(FEATURES, FEATURES, 1)
        self.scores_16 = nn.Conv2d(FEATURES, ANCHORS_PER_CELL_16, 1)
        self.boxes_16 = nn.Conv2d(FEATURES, ANCHORS_PER_CELL_16 * NUM_COORDS, 1)
        self.scores_8 = nn.Conv2d(FEATURES, ANCHORS_PER_CELL_8, 1)
        self.boxes_8 = nn.Conv2d(FEATURES, ANCHORS_PER_CELL_8 * NUM_COORDS, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # SAME padding of a 5x5 stride-2 convolution on 256 pixels: 1 before, 2 after.
        x = F.relu(self.stem(F.pad(x, (1, 2, 1, 2))))
        fine = self.blocks(x)  # 16x16
        coarse = self.final_depthwise(pad_same_stride2(fine))
        coarse = F.relu(self.final_pointwise(coarse))  # 8x8
        regressors = torch.cat(
            [
                per_anchor(self.boxes_16(fine), NUM_COORDS),
                per_anchor(self.boxes_8(coarse), NUM_COORDS),
            ],
            dim=1,
        )
        logits = torch.cat(
            [per_anchor(self.scores_16(fine), 1), per_anchor(self.scores_8(coarse), 1)], dim=1
        )
        return regressors, logits.squeeze(-1)


def load_weights(path: str | Path = WEIGHTS_PATH) -> dict[str, torch.Tensor]:
    """The state dict in the shipped npz, after checking the file's SHA-256."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(
            f"{path}: cannot read the BlazeFace weights ({error.strerror})"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise WeightsError(
            f"{path}: SHA-256 {digest} is not that of the BlazeFace weights shipped with "
            f"emonet-cli ({WEIGHTS_SHA256}); the file is damaged: reinstall emonet-cli"
        )
    # Hashed bytes are the ones loaded: the file cannot change in between.
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {name: torch.from_numpy(arrays[name]) for name in arrays.files}


def resize_to_input(frames: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, 256, 256) uint8: the whole frame squashed (no letterbox)
    with antialiased bilinear filtering on floats, rounded, as the reference data computes
    its stand-in for torchvision's Resize(antialias=True) in DISCOVER's module."""
    resized = torch.empty(
        (len(frames), 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.uint8, device=frames.device
    )
    # Frame by frame, the float copy stays in cache: twice as fast as the whole batch for
    # 720p on the CPU. The NHWC layout gives bitwise the same floats as contiguous NCHW.
    for index, frame in enumerate(frames):
        x = frame.permute(2, 0, 1)[None].float()
        x = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
        resized[index] = x[0].round_().clamp_(0, 255)
    return resized


def as_frame_batch(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Frames as one (N, H, W, 3) uint8 array; ValueError unless they are RGB uint8 frames of
    one size."""
    batch = frames
    if not isinstance(batch, np.ndarray):
        shapes = {np.shape(frame) for frame in frames}
        if len(shapes) > 1:
            raise ValueError(f"frames of one call must share one size, not {sorted(shapes)}")
        batch = np.stack(frames) if len(frames) else np.zeros((0, 1, 1, 3), np.uint8)
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8 RGB frames, not {batch.dtype} {batch.shape[1:]}")
    return np.ascontiguousarray(batch)  # torch takes no negative strides (flipped views)


class BlazeFace:
    """The BlazeFace back-model detector with DISCOVER's thresholds.

    `device` and `precision` follow the EmoNet model's rules (devices.select_device,
    resolve_precision). fp32 reproduces DISCOVER's numbers; bf16 moved boxes and scores of the
    reference frames by up to 2e-3 (and runs far slower on CPUs without native bf16)."""

    def __init__(
        self,
        device: str | torch.device = "auto",
        precision: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        min_score: float = MIN_SCORE,
        iou_threshold: float = IOU_THRESHOLD,
        weights: str | Path = WEIGHTS_PATH,
    ):
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.precision = resolve_precision(precision, self.device)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.batch_size = batch_size
        self.min_score, self.iou_threshold = min_score, iou_threshold
        network = BlazeFaceNet()
        try:
            network.load_state_dict(load_weights(weights))
        except RuntimeError as error:
            raise WeightsError(f"{weights}: not BlazeFace back weights ({error})") from None
        # channels-last lets oneDNN / cuDNN pick their fastest convolution kernels.
        self.network = network.eval().to(self.device, memory_format=torch.channels_last)
        self.frames_per_pass = CPU_FRAMES_PER_PASS if self.device.type == "cpu" else batch_size

    def _autocast(self):
        return autocast(self.device, self.precision)  # fp32: IEEE float32 on CUDA too

    def network_input(self, frames: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """The frames as the network sees them before scaling: (N, 3, 256, 256) uint8 on the
        detector's device."""
        batch = torch.from_numpy(as_frame_batch(frames)).to(self.device)
        return resize_to_input(batch)

    def raw_outputs(
        self, frames: Sequence[np.ndarray] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Box regressors (N, 896, 16) and raw scores (N, 896) as float32."""
        batch = as_frame_batch(frames)
        if len(batch) == 0:
            return np.zeros((0, NUM_ANCHORS, NUM_COORDS), np.float32), np.zeros(
                (0, NUM_ANCHORS), np.float32
            )
        with torch.inference_mode():
            inputs = self.network_input(batch)
            parts = [self._run(chunk) for chunk in inputs.split(self.frames_per_pass)]
        regressors, logits = zip(*parts)
        return np.concatenate(regressors), np.concatenate(logits)

    def _run(self, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass of (n, 3, 256, 256) uint8 network inputs."""
        # DISCOVER's scaling to [-1, 1], operation for operation.
        x = (inputs.float() / 127.5 - 1.0).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            regressors, logits = self.network(x)
        return regressors.float().cpu().numpy(), logits.float().cpu().numpy()

    def detect(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Each frame's faces after weighted NMS, as (n, 17) float32 rows (postprocess's
        DETECTION_COLUMNS: ymin, xmin, ymax, xmax, six keypoint x, y pairs, score), best first.
        Frames are HxWx3 uint8 RGB of one size; they are run batch_size at a time."""
        batch = as_frame_batch(frames)
        found: list[np.ndarray] = []
        for start in range(0, len(batch), self.batch_size):
            regressors, logits = self.raw_outputs(batch[start : start + self.batch_size])
            for frame_regressors, frame_logits in zip(regressors, logits):
                candidates = detections_from_outputs(frame_regressors, frame_logits, self.min_score)
                found.append(weighted_nms(candidates, self.iou_threshold))
        return found
