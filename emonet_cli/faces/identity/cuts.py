"""Cuts and abrupt changes of the picture, where a face's position says nothing about who it
is: a grey thumbnail of each frame against the previous one's. Within a shot, people moving,
talking and turning change the thumbnail by a fraction of a grey level to a few; a cut, even
between two shots of the same room where only the faces change (the composites of the tests:
two faces of 150 pixels swapping places in 480x270), by 8 and more. A cut is a change above
CUT_DIFFERENCE and RELATIVE times the median change of the frames before (a camera panning fast
changes every frame a lot, and is no cut)."""

from __future__ import annotations

import cv2
import numpy as np

from emonet_cli.media.frames import Frame

THUMBNAIL = (48, 27)  # width, height
CUT_DIFFERENCE = 5.0  # mean absolute grey difference (0-255) between consecutive thumbnails
RELATIVE = 4.0
HISTORY = 10  # frames whose median change a cut is measured against


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
        self.changes: list[float] = []

    def is_cut(self, frame: Frame) -> bool:
        current = thumbnail(frame)
        previous, self.previous = self.previous, current
        if previous is None:
            return False
        change = float(np.abs(current - previous).mean())
        # The shot's usual change: the median of the last frames' (a cut among them is no
        # measure of it; before any, nothing is known and nothing is a cut).
        usual = float(np.median(self.changes)) if self.changes else np.inf
        self.changes = [*self.changes[-(HISTORY - 1) :], change]
        return change > self.threshold and change > RELATIVE * usual
