"""What every box source hands on: the faces of a frame (`FrameFace`), from a `FaceSource`.

A `FaceSource` has one method: for a batch of decoded frames, every face of each frame. Three
kinds stand behind it: box files (`source.BoxFileFaces`), the whole frame
(`source.WholeFrameFaces`) and the detector (`detection.detector.DetectedFaces`). Which face
belongs to which person is the next layer's call (`people`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from emonet_cli.faces.boxfiles import box_has_area
from emonet_cli.formats.person_labels import NUMBERED, PERSON_PREFIX, numbered_label
from emonet_cli.media.frames import Frame


@dataclass(frozen=True)
class FrameFace:
    """One face of one frame as its source gives it, whatever its confidence: `box` is x1, y1,
    x2, y2 in frame pixels (None where the source has no box for the frame) and `whole_frame`
    says that the frame itself is the face crop; `detection` is the row a detector keeps for
    it (the 17 values of detection.postprocess), None for other sources; `person` is the
    person number a box file gives the face (its face column, or which of several files);
    `keypoints` are BlazeFace's six keypoints (6, 2) x, y in frame pixels where the source has
    them (the detector, a DISCOVER box stream with its keypoint stream), else None."""

    box: np.ndarray | None
    conf: float
    whole_frame: bool = False
    detection: np.ndarray | None = None
    person: int | None = None
    # How far the face is from its person's descriptors, where identity described it
    # (faces.identity); None elsewhere.
    distance: float | None = None
    keypoints: np.ndarray | None = None

    def usable(self, min_conf: float) -> bool:
        """Whether the face is analysed: a finite box with an area (an empty or inverted box
        is no face, whatever its source), at or above the confidence threshold."""
        if self.box is None or self.conf < min_conf:
            return False
        return bool(np.isfinite(self.box).all() and box_has_area(self.box))


NO_FACE = FrameFace(None, 0.0)


class FaceSource(Protocol):
    """Where the faces of one input's frames come from. `warnings` says where the source and
    the media disagree (worth telling the user)."""

    warnings: list[str]

    def faces(self, frames: Sequence[Frame]) -> list[list[FrameFace]]:
        """Every face of each frame, in order; frames come in decoding order."""
        ...


class PersonLabel(str):
    """A person's label as outputs spell it (`face3`, or a gallery name such as `alice`; see
    formats/person_labels), carrying the person's `number` (their `face` in S.faces.csv)."""

    number: int

    def __new__(cls, text: str, number: int) -> PersonLabel:
        label = super().__new__(cls, text)
        label.number = number
        return label

    def __reduce__(self):
        return (PersonLabel, (str(self), self.number))


def person_label(face_id: int, name: str | None = None) -> PersonLabel:
    """The label of person number `face_id`: `face3` (their outputs are S.face3.*), or their
    gallery `name` (S.alice.*)."""
    return PersonLabel(name or numbered_label(face_id), face_id)


def face_id(label: str) -> int:
    """The number of a person label: 3 for `face3`, a named person's own number."""
    number = getattr(label, "number", None)
    if number is not None:
        return number
    if not NUMBERED.fullmatch(label):
        raise ValueError(f"{label!r} is not a numbered person label")
    return int(label.removeprefix(PERSON_PREFIX))
