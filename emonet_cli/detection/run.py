"""A video or image through a face detector into DISCOVER's two BlazeFace box streams."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from emonet_cli.detection.boxstream import BoxStreamWriter
from emonet_cli.detection.postprocess import MIN_SCORE, SCORE
from emonet_cli.video import Frame, MediaReader

IMAGE_SAMPLE_RATE = 1.0  # what DISCOVER writes for a still image


class Detector(Protocol):
    """What detect_file needs of a detector (blazeface.BlazeFace is one)."""

    batch_size: int

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class BoxStreams:
    """The streams detect_file wrote, and what they hold."""

    boxes: Path  # X.stream: ymin, xmin, ymax, xmax, conf
    keypoints: Path  # X.keypoints.stream: six y, x pairs, conf
    frames: int
    frames_with_face: int  # confidence above 0
    sr: float
    frame_size: tuple[int, int]  # width, height


def batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    iterator = iter(frames)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def detect_file(
    path: str | Path,
    detector: Detector,
    output_dir: str | Path | None = None,
    min_score: float = MIN_SCORE,
    square: bool = True,
    repeat_last: bool = True,
) -> BoxStreams:
    """Detect faces in every frame of a video (or in an image) and write `NAME.stream` and
    `NAME.keypoints.stream` into `output_dir` (default: beside the input), one sample per
    frame at the video's frame rate (1 for an image), as DISCOVER's blazeface module does.
    Both files appear only once complete."""
    reader = MediaReader(path)
    info = reader.info
    folder = Path(output_dir) if output_dir is not None else info.path.parent
    sr = IMAGE_SAMPLE_RATE if info.is_image else info.fps
    frame_size = (info.width, info.height)
    writer = BoxStreamWriter(
        folder / f"{info.path.stem}.stream", frame_size, sr, min_score, square, repeat_last
    )
    frames = found = 0
    try:
        with reader:
            for batch in batches(reader, detector.batch_size):
                for detections in detector.detect([frame.image for frame in batch]):
                    found += bool(writer.append(detections)[SCORE] > 0)
                    frames += 1
        boxes, keypoints = writer.close()
    except BaseException:
        writer.abort()
        raise
    return BoxStreams(boxes, keypoints, frames, found, sr, frame_size)
