"""Whether boxes lie on the frames they are used with. One rule for every model family: a box
with no overlap with the frame is no face (nothing is cut from the black around a frame), and
the input's warnings count such boxes. A box stream that declares the frame size its boxes
were found on (SSI `size="W:H"`, which the detect command and DISCOVER write) must declare a
frame of the video's shape: normalised boxes of another shape would land in the wrong place."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emonet_cli.errors import InputError

# Frames of one shape may differ by a codec's padding rows (1920x1080 and 1920x1088).
SHAPE_TOLERANCE = 0.02
SIZE_TEXT = re.compile(r"\s*(\d+)\s*[:x]\s*(\d+)\s*")


def off_frame(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(n,) bool: the boxes x1, y1, x2, y2 that enclose an area and have none in common with
    a `width` x `height` frame (a box that overlaps it in part is on the frame)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    has_area = (x2 > x1) & (y2 > y1)
    return has_area & ((x2 <= 0) | (y2 <= 0) | (x1 >= width) | (y1 >= height))


def off_frame_warning(
    media: Path, source: Path, off: np.ndarray, frame_size: tuple[int, int]
) -> list[str]:
    """The warning of an input whose box file has boxes off its frames (`off` from
    off_frame, over the rows that apply to this input)."""
    count = int(np.count_nonzero(off))
    if not count:
        return []
    width, height = frame_size
    return [
        f"{media}: {count} of {len(off)} boxes in {source.name} lie wholly outside the "
        f"{width}x{height} frame: no face in those frames (boxes made for another video?)"
    ]


def declared_size(text: object) -> tuple[int, int] | None:
    """The (width, height) of a stream's `size` meta (`W:H`); None when absent or unreadable
    (the meta is optional: the boxes are read as before)."""
    match = SIZE_TEXT.fullmatch(str(text)) if text is not None else None
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    return (width, height) if width > 0 and height > 0 else None


def check_declared_size(
    source: Path, declared: tuple[int, int] | None, frame_size: tuple[int, int]
) -> None:
    """InputError when a box stream declares a frame of another shape than the video's; the
    message says when the video's frame is the declared one turned by 90 degrees."""
    if declared is None:
        return
    width, height = frame_size
    if _same_shape(declared, (width, height)):
        return
    turned = _same_shape(declared, (height, width))
    why = (
        ": the same frame turned by 90 degrees (a recording turned upright?)"
        if turned
        else ", another shape"
    )
    raise InputError(
        f"{source}: its boxes were found on a {declared[0]}x{declared[1]} frame, but the "
        f"video's frames are {width}x{height}{why}; the boxes would land in the wrong place: "
        "detect the faces again on this video (the detect command, or --detect)"
    )


def _same_shape(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] * b[1] - a[1] * b[0]) <= SHAPE_TOLERANCE * a[0] * b[1]
