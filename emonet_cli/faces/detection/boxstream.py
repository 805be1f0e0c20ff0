"""DISCOVER's BlazeFace box streams, frame by frame: one face, squared, the last one repeated.

What DISCOVER's module (hcmlab/discover-modules, modules/blazeface/blaze_face.py, with the
options of blazeface.trainer) writes, as read from its code:

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
- The bounding-box stream holds `ymin, xmin, ymax, xmax, conf` (dim 5). The landmark stream
  holds the six keypoints as `y, x` pairs (DISCOVER swaps the detector's `x, y` order), in
  MediaPipe's order right eye, left eye, nose, mouth, right ear, left ear, then the
  confidence (dim 13; DISCOVER's dimension labels name only the first 12).
- Both are BINARY FLOAT streams of one chunk at the video's frame rate (1 for an image). The
  header's <meta> holds `type`, the media type (`feature;face;boundingbox;blazeface` and
  `feature;face;landmarks;blazeface`), and `size="W:H"`, the frame's width and height.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emonet_cli.faces.detection.postprocess import (
    BOX,
    DETECTION_COLUMNS,
    KEYPOINTS,
    MIN_SCORE,
    SCORE,
)
from emonet_cli.formats.streams import StreamWriter

BOX_MEDIA_TYPE = "feature;face;boundingbox;blazeface"
KEYPOINT_MEDIA_TYPE = "feature;face;landmarks;blazeface"
BOX_COLUMNS = ("ymin", "xmin", "ymax", "xmax", "conf")
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
KEYPOINT_COLUMNS = tuple(f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in "yx") + ("conf",)
KEYPOINT_SUFFIX = ".keypoints"


def best_face(detections: np.ndarray, min_score: float = MIN_SCORE) -> np.ndarray | None:
    """The highest-scoring detection scoring at least `min_score` (the first one on ties), or
    None."""
    candidates = detections[detections[:, SCORE] >= min_score]
    if len(candidates) == 0:
        return None
    return candidates[np.argmax(candidates[:, SCORE])]


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


class RepeatLast:
    """Fills frames without a face with the last face, at confidence 0 (DISCOVER's repeat_last);
    before any face, with the whole frame."""

    def __init__(self) -> None:
        self.last = np.zeros(DETECTION_COLUMNS, np.float32)
        self.last[2:4] = 1  # ymax, xmax: the box 0, 0, 1, 1

    def __call__(self, detection: np.ndarray | None) -> np.ndarray:
        if detection is not None:
            self.last = detection.astype(np.float32)
            return self.last.copy()
        filled = self.last.copy()
        filled[SCORE] = 0
        return filled


def stream_rows(detection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame's kept detection -> its row of the box stream and of the keypoint stream."""
    box_row = np.append(detection[BOX], detection[SCORE])
    # Detections carry x, y pairs; DISCOVER's landmark stream y, x pairs.
    keypoints_yx = detection[KEYPOINTS].reshape(-1, 2)[:, ::-1].ravel()
    return box_row, np.append(keypoints_yx, detection[SCORE])


def keypoint_stream_path(box_stream: str | Path) -> Path:
    """`X.keypoints.stream` for the box stream `X.stream`."""
    box_stream = Path(box_stream)
    stem = box_stream.name.removesuffix(".stream")
    return box_stream.with_name(stem + KEYPOINT_SUFFIX + ".stream")


class FaceSelector:
    """Frame by frame, the one detection DISCOVER's module keeps: the best face, squared,
    or the repeated last one (see the module docstring). Holds the repeat-last state."""

    def __init__(
        self,
        frame_size: tuple[int, int],
        min_score: float = MIN_SCORE,
        square: bool = True,
        repeat_last: bool = True,
    ):
        self.frame_size = frame_size  # width, height
        self.min_score, self.square = min_score, square
        self.repeat = RepeatLast() if repeat_last else None

    def __call__(self, detections: np.ndarray) -> np.ndarray:
        """A frame's detections (n, 17), n >= 0 -> the 17 values kept for it."""
        face = best_face(detections, self.min_score)
        if face is not None and self.square:
            face = square_box(face, self.frame_size)
        if self.repeat is not None:
            return self.repeat(face)
        return np.zeros(DETECTION_COLUMNS, np.float32) if face is None else face


class BoxStreamWriter:
    """Appends, frame by frame, the rows DISCOVER's module writes for a frame's detections to
    the box stream `path` and the keypoint stream beside it. Both appear only on close()
    (atomically); abort() leaves neither."""

    def __init__(
        self,
        path: str | Path,
        frame_size: tuple[int, int],
        sr: float,
        min_score: float = MIN_SCORE,
        square: bool = True,
        repeat_last: bool = True,
    ):
        self.select = FaceSelector(frame_size, min_score, square, repeat_last)
        meta = {"size": f"{frame_size[0]}:{frame_size[1]}"}
        self.boxes = StreamWriter(path, len(BOX_COLUMNS), sr, meta={"type": BOX_MEDIA_TYPE, **meta})
        self.keypoints = StreamWriter(
            keypoint_stream_path(self.boxes.header),
            len(KEYPOINT_COLUMNS),
            sr,
            meta={"type": KEYPOINT_MEDIA_TYPE, **meta},
        )

    def append(self, detections: np.ndarray) -> np.ndarray:
        """Add one frame, given all its detections (n, 17), n >= 0; returns the detection
        written for it."""
        kept = self.select(detections)
        self.append_kept(kept[None])
        return kept

    def append_kept(self, kept: np.ndarray) -> None:
        """Add frames whose detection was already kept (by a FaceSelector): (n, 17)."""
        rows = [stream_rows(detection) for detection in kept]
        self.boxes.append(np.array([box_row for box_row, _ in rows]).reshape(-1, 5))
        self.keypoints.append(np.array([keypoints for _, keypoints in rows]).reshape(-1, 13))

    def finish(self) -> None:
        """Write both streams out without publishing them (see fileio.PendingFile)."""
        try:
            self.boxes.finish()
        except BaseException:
            self.keypoints.abort()
            raise
        self.keypoints.finish()

    def publish(self) -> tuple[Path, Path]:
        """Give both finished streams their names; returns their header paths."""
        return self.boxes.publish(), self.keypoints.publish()

    def close(self) -> tuple[Path, Path]:
        """Publish both streams; returns their header paths."""
        self.finish()
        return self.publish()

    def abort(self) -> None:
        self.boxes.abort()
        self.keypoints.abort()
