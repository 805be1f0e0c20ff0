"""What a decoder yields: decoded frames and what the container says of its media, and which
files are media at all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES


class Frame:
    """One decoded frame: `index` (0-based, in decoding order, counting every frame of the
    video, selected or not), `time` (seconds from the first frame) and `image` (HxWx3 uint8
    RGB). A video frame keeps the decoder's BGR (`bgr`) and converts it to RGB on first use
    only, so that a frame that is only cropped is never converted whole (see
    align.crop_frame)."""

    __slots__ = ("index", "time", "bgr", "_rgb")

    def __init__(
        self,
        index: int,
        time: float,
        image: np.ndarray | None = None,
        *,
        bgr: np.ndarray | None = None,
    ):
        self.index = index
        self.time = time
        self.bgr = bgr
        self._rgb = image

    @property
    def image(self) -> np.ndarray | None:
        if self._rgb is None and self.bgr is not None:
            self._rgb = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2RGB)
        return self._rgb

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, time={self.time})"


@dataclass
class MediaInfo:
    path: Path
    width: int
    height: int
    fps: float  # nominal frame rate; 0 for a still image
    frame_count: int  # as the container states it (may be an estimate)
    is_image: bool
    # Degrees the decoder turned the frames clockwise to show them as a player does, as the
    # container's display matrix asks (phone recordings); width and height are the upright
    # frames'.
    rotated_clockwise: int = 0

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES
