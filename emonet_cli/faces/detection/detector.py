"""The detector as a face source, with DISCOVER's rules for the faces it keeps.

What DISCOVER's BlazeFace module (hcmlab/discover-modules, modules/blazeface/blaze_face.py,
with the options of blazeface.trainer) does, as read from its code:

- Per frame the detections after weighted NMS (thresholds 0.5 and 0.3; DISCOVER's
  min_suppression_thresh option never reaches the detector, which reads another attribute
  name, so 0.3 always applies); the one with the highest score is kept (`num_faces` is 1).
- `force_square_ar` (default on) stretches that box along the frame's shorter side by the
  frame's aspect ratio, symmetrically about its centre: in a landscape W x H frame the box's
  normalised height h becomes h * W / H (`ymin` and `ymax` each move by h * (W / H - 1) / 2),
  in a portrait frame its width w becomes w * H / W, in a square frame nothing moves. It is
  not "grow the shorter side to the longer": BlazeFace's boxes are square in normalised
  coordinates (to ~1e-6), which makes the result square in pixels. Coordinates may leave
  [0, 1]. Keypoints are not moved. (DISCOVER then raises if the sides differ by more than a
  pixel, which BlazeFace's boxes never do.)
- `repeat_last` (default on): a frame without a face gets the last kept detection, box and
  keypoints, with confidence 0; before the first face it gets the box `0, 0, 1, 1` with zero
  keypoints and confidence 0. Without it such a frame is all zeros.

`DetectedFaces` gives every detection of a frame scoring at least `min_score`, squared as
DISCOVER squares its one face; the people layer keeps the best one (or tracks them all) and
repeats the last (`kept_row`). A face's box is its row as the box stream stores it (float32)
and its reader reads it back (`boxfiles.pixel_boxes`), so that analysing with the detector
equals analysing the stream `emonet detect` wrote.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from emonet_cli.faces.boxfiles import pixel_boxes
from emonet_cli.faces.detection.postprocess import (
    BOX,
    DETECTION_COLUMNS,
    IOU_THRESHOLD,
    KEYPOINTS,
    MIN_SCORE,
    NUM_KEYPOINTS,
    SCORE,
)
from emonet_cli.faces.face import FrameFace
from emonet_cli.faces.tracking import DEFAULT_PATIENCE_S
from emonet_cli.media.frames import Frame, MediaInfo

if TYPE_CHECKING:
    from emonet_cli.faces.detection.blazeface import BlazeFace
    from emonet_cli.faces.identity.gallery import Gallery

DETECTOR_NAME = "BlazeFace back (MediaPipe), DISCOVER's blazeface semantics"
IMAGE_SAMPLE_RATE = 1.0  # what DISCOVER writes for a still image
# What repeat_last gives before the first face: the box 0, 0, 1, 1 (the whole frame) at
# confidence 0, with zero keypoints.
WHOLE_FRAME_ROW = np.zeros(DETECTION_COLUMNS, np.float32)
WHOLE_FRAME_ROW[2:4] = 1  # ymax, xmax


@dataclass(frozen=True, kw_only=True)
class DetectionSettings:
    """How faces are detected: DISCOVER's blazeface options, and where the network runs.
    Torch-free, so that it travels in options and to worker processes."""

    min_score: float = MIN_SCORE
    square: bool = True
    repeat_last: bool = True
    device: str = "auto"
    precision: str = "fp32"  # DISCOVER's numbers; bf16 moves boxes by up to 2e-3
    batch_size: int = 16
    max_faces: int = 1  # above 1: every face up to this many per frame, tracked (see tracking)
    track_patience: float = DEFAULT_PATIENCE_S  # seconds a tracked person may go unseen
    track_confirm: int = 1  # frames in a row a new face must be seen to become a person
    # With max_faces above 1: identity (faces.identity, the extra `identity`) decides who is
    # who beside position; `gallery` names known people.
    identity: bool = True
    gallery: Gallery | None = None

    def detector(self) -> BlazeFace:
        """The detector, built once per process and settings."""
        return _detector(self.device, self.precision, self.batch_size)

    def provenance(self) -> dict:
        """What the summary JSON records about the detection."""
        from emonet_cli.faces.detection.blazeface import WEIGHTS_SHA256

        own = {f.name: getattr(self, f.name) for f in fields(self)}
        identity, gallery = own.pop("identity"), own.pop("gallery")
        if self.max_faces > 1:  # who is who: by position alone, or with identity
            own["identity"] = identity and {
                "gallery": None if gallery is None else gallery.describe()
            }
        return {
            "name": DETECTOR_NAME,
            "weights_sha256": WEIGHTS_SHA256,
            "iou_threshold": IOU_THRESHOLD,
            **own,
        }


@functools.lru_cache(maxsize=4)
def _detector(device: str, precision: str, batch_size: int) -> BlazeFace:
    from emonet_cli.faces.detection.blazeface import BlazeFace

    return BlazeFace(device=device, precision=precision, batch_size=batch_size)


def stream_rate(info: MediaInfo) -> float:
    """The box stream's sample rate: one sample per frame, 1 for a still image."""
    return IMAGE_SAMPLE_RATE if info.is_image else info.fps


class DetectedFaces:
    """The detector's faces of each frame (see the module docstring)."""

    def __init__(self, info: MediaInfo, settings: DetectionSettings):
        self.settings = settings
        self.frame_size = (info.width, info.height)
        self.detector = settings.detector()
        self.warnings: list[str] = []

    def faces(self, frames: Sequence[Frame]) -> list[list[FrameFace]]:
        if not frames:
            return []
        found = self.detector.detect([frame.image for frame in frames])
        settings = self.settings
        return [
            detected_faces(detections, self.frame_size, settings.min_score, settings.square)
            for detections in found
        ]


def detected_faces(
    detections: np.ndarray,
    frame_size: tuple[int, int],
    min_score: float = MIN_SCORE,
    square: bool = True,
) -> list[FrameFace]:
    """One frame's detections (n, 17) -> its faces: those scoring at least `min_score`,
    squared as DISCOVER squares (when `square`), in the detector's order."""
    rows = detections[detections[:, SCORE] >= min_score]
    if square:
        rows = np.array([square_box(row, frame_size) for row in rows])
    return faces_of_rows(rows.reshape(-1, DETECTION_COLUMNS), frame_size)


def faces_of_rows(rows: np.ndarray, frame_size: tuple[int, int]) -> list[FrameFace]:
    """The faces of detection rows (n, 17), each box as the box stream stores it (float32)
    and its reader reads it back."""
    rows = rows.astype(np.float32)
    boxes = pixel_boxes(rows[:, BOX], frame_size)
    keypoints = rows[:, KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) * np.array(frame_size, np.float64)
    return [
        FrameFace(box, float(row[SCORE]), detection=row, keypoints=points)
        for box, row, points in zip(boxes, rows, keypoints)
    ]


def square_box(detection: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """A copy of `detection` whose box is stretched as DISCOVER's force_square_ar does (see the
    module docstring); `frame_size` is (width, height)."""
    width, height = frame_size
    squared = detection.astype(np.float64)
    # DISCOVER stretches along x only when the frame is taller than wide.
    low, high, ratio = (1, 3, height / width) if height > width else (0, 2, width / height)
    grow = abs(squared[high] - squared[low]) * (ratio - 1)
    squared[low] -= grow / 2
    squared[high] += grow / 2
    return squared.astype(detection.dtype)


def kept_row(detection: np.ndarray | None, last: np.ndarray | None, repeat_last: bool = True):
    """The row DISCOVER keeps for a face in a frame: its detection where seen; else, with
    repeat_last, the `last` row kept (the whole frame before any) at confidence 0, without
    it all zeros."""
    if detection is not None:
        return detection.astype(np.float32)
    if not repeat_last:
        return np.zeros(DETECTION_COLUMNS, np.float32)
    row = (WHOLE_FRAME_ROW if last is None else last).copy()
    row[SCORE] = 0
    return row
