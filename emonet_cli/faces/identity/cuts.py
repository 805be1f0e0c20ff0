"""Cuts and abrupt changes of the picture, where a face's position says nothing about who it
is: a grey thumbnail of each frame against the previous one's. Within a shot, people moving,
talking and turning change the thumbnail by a few grey levels; a cut (or a light switched on)
by tens."""

from __future__ import annotations

import cv2
import numpy as np

from emonet_cli.media.frames import Frame

THUMBNAIL = (48, 27)  # width, height
CUT_DIFFERENCE = 12.0  # mean absolute grey difference (0-255) between consecutive thumbnails


def thumbnail(frame: Frame) -> np.ndarray:
    """The frame in grey at THUMBNAIL size (from the decoder's BGR where there is one)."""
    pixels = frame.bgr if frame.bgr is not None else frame.image
    small = cv2.resize(pixels, THUMBNAIL, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


class CutDetector:
    """Says for each frame, in decoding order, whether the picture changed abruptly since the
    frame before."""

    def __init__(self, threshold: float = CUT_DIFFERENCE):
        self.threshold = threshold
        self.previous: np.ndarray | None = None

    def is_cut(self, frame: Frame) -> bool:
        current = thumbnail(frame)
        previous, self.previous = self.previous, current
        if previous is None:
            return False
        return float(np.abs(current - previous).mean()) > self.threshold
