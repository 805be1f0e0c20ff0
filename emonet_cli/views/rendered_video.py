"""The video loop every render shares: decode a frame, pair it with its result, paint it, and
write the rendered video atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2

from emonet_cli.errors import EmonetError, InputError
from emonet_cli.formats.fileio import atomic_path, remove_partial_files
from emonet_cli.media.opencv_names import opencv_name
from emonet_cli.media.video import MediaReader
from emonet_cli.views.painter import FramePainter, FrameResult, output_size

FOURCC = "mp4v"


def _paired(frames: Iterable, results: Iterable[FrameResult], video: Path) -> Iterator[tuple]:
    """Frames with their results, failing when one runs out before the other."""
    results = iter(results)
    count = 0
    for frame in frames:
        result = next(results, None)
        if result is None:
            raise InputError(f"{video}: the results end at frame {count}; the video goes on")
        count += 1
        yield frame, result
    if next(results, None) is not None:
        raise InputError(f"{video}: the video ends at frame {count}; the results go on")


def write_rendered(
    video: Path,
    output: Path,
    results: Iterable,
    make_painter: Callable[[int, int], FramePainter],
    paint: Callable,
    every: int = 1,
    max_width: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> tuple[int, float, tuple[int, int]]:
    """The video loop of a render: each decoded frame with its result through `paint(painter,
    frame, result, shown)`, which returns the composed frame when `shown` (every `every`th)."""
    remove_partial_files(output)  # left by a render that was killed outright
    with MediaReader(video) as reader, atomic_path(output, suffix=output.suffix) as tmp:
        info = reader.info
        painter = make_painter(info.width, info.height)
        size = output_size(painter.size, max_width)
        fps = info.fps / every
        with opencv_name(tmp) as name:
            writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*FOURCC), fps, size)
        if not writer.isOpened():
            raise EmonetError(f"{output}: OpenCV cannot write this video type; use .mp4")
        written = 0
        try:
            for frame, result in _paired(reader, results, video):
                composed = paint(painter, frame, result, frame.index % every == 0)
                if composed is not None:
                    if size != painter.size:
                        composed = cv2.resize(composed, size, interpolation=cv2.INTER_AREA)
                    writer.write(cv2.cvtColor(composed, cv2.COLOR_RGB2BGR))
                    written += 1
                if on_frame is not None:
                    on_frame(1)
        finally:
            writer.release()
    return written, fps, size
