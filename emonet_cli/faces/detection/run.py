"""A video or image through a face detector into DISCOVER's two BlazeFace box streams."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emonet_cli.errors import InputError
from emonet_cli.faces.detection.boxstream import BoxStreamWriter, keypoint_stream_path
from emonet_cli.faces.detection.postprocess import SCORE
from emonet_cli.faces.detection.source import DetectionSettings, stream_rate
from emonet_cli.formats.fileio import remove_partial_files
from emonet_cli.media.frames import Frame, MediaInfo
from emonet_cli.media.video import MediaReader


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
    settings: DetectionSettings,
    output_dir: str | Path | None = None,
    on_start: Callable[[MediaInfo], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> BoxStreams:
    """Detect faces in every frame of a video (or in an image) and write `NAME.stream` and
    `NAME.keypoints.stream` into `output_dir` (default: beside the input), one sample per
    frame at the video's frame rate (1 for an image), as DISCOVER's blazeface module does.
    Both files appear only once complete."""
    detector = settings.detector()
    with MediaReader(path) as reader:
        info = reader.info
        folder = Path(output_dir) if output_dir is not None else info.path.parent
        target = folder / f"{info.path.stem}.stream"
        for name in (target, keypoint_stream_path(target)):
            for file in (name, name.with_name(name.name + "~")):
                remove_partial_files(file)  # left by a run that was killed outright
        if on_start is not None:
            on_start(info)
        frame_size = (info.width, info.height)
        writer = BoxStreamWriter(
            target,
            frame_size,
            stream_rate(info),
            settings.min_score,
            settings.square,
            settings.repeat_last,
        )
        frames = found = 0
        try:
            for batch in batches(reader, detector.batch_size):
                for detections in detector.detect([frame.image for frame in batch]):
                    found += bool(writer.append(detections)[SCORE] > 0)
                    frames += 1
                if on_batch is not None:
                    on_batch(len(batch))
            if frames == 0:
                raise InputError(f"{path}: no frame could be decoded")
            boxes, keypoints = writer.close()
        except BaseException:
            writer.abort()
            raise
    return BoxStreams(boxes, keypoints, frames, found, stream_rate(info), frame_size)
