"""What every box source hands the analysis: the face of a frame, and the two lookups that give
them (one face per frame, or each person's face under a stable label)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from emonet_cli.faces.boxfiles import box_has_area
from emonet_cli.media.frames import Frame


@dataclass(frozen=True)
class FrameFace:
    """The face of one frame as its source gives it, whatever its confidence: `box` is
    x1, y1, x2, y2 in frame pixels (None where the source has no box for the frame) and
    `whole_frame` says that the frame itself is the face crop; `detection` is what a detector
    kept for the frame (the 17 values of detection.postprocess), None for other sources."""

    box: np.ndarray | None
    conf: float
    whole_frame: bool = False
    detection: np.ndarray | None = None

    def usable(self, min_conf: float) -> bool:
        """Whether the face is analysed: a finite box with an area (an empty or inverted box
        is no face, whatever its source), at or above the confidence threshold."""
        if self.box is None or self.conf < min_conf:
            return False
        return bool(np.isfinite(self.box).all() and box_has_area(self.box))


NO_FACE = FrameFace(None, 0.0)


class FaceLookup(Protocol):
    def faces(self, frames: Sequence[Frame]) -> list[FrameFace]:
        """The face of each frame, in order."""
        ...

    def warnings(self) -> list[str]:
        """Mismatches between the source and the media, worth telling the user."""
        ...


PERSON_PREFIX = "face"


def person_label(face_id: int) -> str:
    return f"{PERSON_PREFIX}{face_id}"


def face_id(label: str) -> int:
    """The number of a person label: 3 for `face3`."""
    return int(label.removeprefix(PERSON_PREFIX))


class PeopleLookup(Protocol):
    def people(self, frames: Sequence[Frame]) -> list[dict[str | None, FrameFace]]:
        """For each frame, the face of every person known so far, in order of their labels
        (None: the one person of a single-face source)."""
        ...

    def absent(self, label: str | None) -> FrameFace:
        """A person's face in the frames before they appear."""
        ...

    def warnings(self) -> list[str]: ...
