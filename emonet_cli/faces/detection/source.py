"""The detector as a box source: faces found in the decoded frames themselves.

`DetectionSettings` says how to detect (torch-free, so it travels in options and to worker
processes); `DetectionLookup` gives each frame its face exactly as analysing the box stream
that `emonet detect` writes would: the same kept detection (best face, squared, the last one
repeated), stored as float32 as in the stream, scaled to pixels by the same function.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emonet_cli.faces.boxfiles import boxes_from_normalised
from emonet_cli.faces.detection.boxstream import FaceSelector, stream_rows
from emonet_cli.faces.detection.postprocess import IOU_THRESHOLD, MIN_SCORE
from emonet_cli.faces.lookup import FrameFace
from emonet_cli.faces.tracking import DEFAULT_PATIENCE_S, TrackingSettings
from emonet_cli.media.frames import Frame, MediaInfo

if TYPE_CHECKING:
    from emonet_cli.faces.detection.blazeface import BlazeFace

DETECTOR_NAME = "BlazeFace back (MediaPipe), DISCOVER's blazeface semantics"
IMAGE_SAMPLE_RATE = 1.0  # what DISCOVER writes for a still image


@dataclass(frozen=True, kw_only=True)
class DetectionSettings:
    """How faces are detected: DISCOVER's blazeface options, and where the network runs."""

    min_score: float = MIN_SCORE
    square: bool = True
    repeat_last: bool = True
    device: str = "auto"
    precision: str = "fp32"  # DISCOVER's numbers; bf16 moves boxes by up to 2e-3
    batch_size: int = 16
    max_faces: int = 1  # above 1: every face up to this many per frame, tracked (see tracking)
    track_patience: float = DEFAULT_PATIENCE_S  # seconds a tracked person may go unseen
    track_confirm: int = 1  # frames in a row a new face must be seen to become a person

    def tracking(self) -> TrackingSettings:
        return TrackingSettings(
            max_faces=self.max_faces, patience=self.track_patience, confirm=self.track_confirm
        )

    def detector(self) -> BlazeFace:
        """The detector, built once per process and settings."""
        return _detector(self.device, self.precision, self.batch_size)

    def provenance(self) -> dict:
        """What the summary JSON records about the detection."""
        from emonet_cli.faces.detection.blazeface import WEIGHTS_SHA256

        return {
            "name": DETECTOR_NAME,
            "weights_sha256": WEIGHTS_SHA256,
            "iou_threshold": IOU_THRESHOLD,
            **asdict(self),
        }


@functools.lru_cache(maxsize=4)
def _detector(device: str, precision: str, batch_size: int) -> BlazeFace:
    from emonet_cli.faces.detection.blazeface import BlazeFace

    return BlazeFace(device=device, precision=precision, batch_size=batch_size)


def stream_rate(info: MediaInfo) -> float:
    """The box stream's sample rate: one sample per frame, 1 for a still image."""
    return IMAGE_SAMPLE_RATE if info.is_image else info.fps


class DetectionLookup:
    """The face of each frame from the detector, frame by frame in decoding order (the
    repeat-last state carries over between calls)."""

    def __init__(self, info: MediaInfo, settings: DetectionSettings):
        self.info = info
        self.detector = settings.detector()
        self.frame_size = (info.width, info.height)
        self.select = FaceSelector(
            self.frame_size, settings.min_score, settings.square, settings.repeat_last
        )

    def faces(self, frames: Sequence[Frame]) -> list[FrameFace]:
        if not frames:
            return []
        found = []
        for detections in self.detector.detect([frame.image for frame in frames]):
            found.append(face_from_kept(self.select(detections), self.info))
        return found

    def warnings(self) -> list[str]:
        return []


def face_from_kept(kept: np.ndarray, info: MediaInfo) -> FrameFace:
    """The face of a kept detection (17 values), with its box as the box stream stores it
    (float32) and its reader reads it back, so that analysing with detection equals analysing
    the stream `emonet detect` wrote."""
    box_row, _ = stream_rows(kept)
    boxes = boxes_from_normalised(
        box_row.astype(np.float32)[None],
        stream_rate(info),
        (info.width, info.height),
        Path(f"{info.path.name} (detected)"),
    )
    return FrameFace(boxes.boxes[0], float(boxes.conf[0]), detection=kept)
