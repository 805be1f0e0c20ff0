"""DISCOVER's two BlazeFace box streams, written from the rows kept per frame (see `detector`
for which rows: the best face, squared, the last one repeated).

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

from emonet_cli.faces.detection.postprocess import BOX, KEYPOINTS, SCORE
from emonet_cli.formats.streams import StreamWriter

BOX_MEDIA_TYPE = "feature;face;boundingbox;blazeface"
KEYPOINT_MEDIA_TYPE = "feature;face;landmarks;blazeface"
BOX_COLUMNS = ("ymin", "xmin", "ymax", "xmax", "conf")
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
KEYPOINT_COLUMNS = tuple(f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in "yx") + ("conf",)
KEYPOINT_SUFFIX = ".keypoints"


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


class BoxStreamWriter:
    """Appends, frame by frame, the rows kept for a face to the box stream `path` and the
    keypoint stream beside it. Both appear only on close() (atomically); abort() leaves
    neither."""

    def __init__(self, path: str | Path, frame_size: tuple[int, int], sr: float):
        meta = {"size": f"{frame_size[0]}:{frame_size[1]}"}
        self.boxes = StreamWriter(path, len(BOX_COLUMNS), sr, meta={"type": BOX_MEDIA_TYPE, **meta})
        self.keypoints = StreamWriter(
            keypoint_stream_path(self.boxes.header),
            len(KEYPOINT_COLUMNS),
            sr,
            meta={"type": KEYPOINT_MEDIA_TYPE, **meta},
        )
        self.paths = [*self.boxes.paths, *self.keypoints.paths]

    def append(self, kept: np.ndarray) -> None:
        """Add frames, given the row kept for each (n, 17)."""
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
