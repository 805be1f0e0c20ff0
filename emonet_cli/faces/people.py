"""People: each person's face, frame by frame, under a stable label; the layer over a
`face.FaceSource` that the analysis, `render` and the writers ask for.

One person, without a label (outputs keep the input's plain names): the best face of each
frame (of the detector: DISCOVER's one face; of a box file of one face or the whole frame: the
one there is). Several people, `face1`, `face2`, ... (outputs `S.face1.csv`, ...): the people
of a box file (its face column, one file per person, an image listed on several lines), or
the tracker's (`tracking`) in order of first appearance; with identity (`identity.tracks`),
by position and the face itself, people named after a gallery where one is given. A person is
known from the first frame with a box of confidence above 0; `several` says which it is.

Detected faces follow DISCOVER's rules per person (`detection.detector`): where a known person
is not seen, their last row is repeated at confidence 0, and before they first appear they
have the whole frame at confidence 0 (`absent`: what a late person's earlier frames get).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from emonet_cli.faces.detection.detector import (
    DetectedFaces,
    faces_of_rows,
    kept_row,
    stream_rate,
)
from emonet_cli.faces.face import NO_FACE, FaceSource, FrameFace, face_id, person_label
from emonet_cli.faces.identity.tracks import IdentityTracker
from emonet_cli.faces.source import BoxFileFaces, BoxSource, WholeFrameFaces, box_file_people
from emonet_cli.faces.tracking import Tracker
from emonet_cli.media.frames import Frame, MediaInfo

FACE_CHUNK = 16  # frames whose faces are found at once: the detector's batch

Faces = dict[str | None, FrameFace]  # a frame's face of every known person, by label


class People:
    """The people of one input's frames, in decoding order (see the module docstring).

    `tracker` gives detected faces their person (several people); `repeat_last` (detected
    faces only; None for box files and the whole frame) fills a known person's unseen
    frames as DISCOVER does."""

    def __init__(
        self,
        source: FaceSource,
        info: MediaInfo,
        *,
        several: bool = False,
        tracker: Tracker | None = None,
        repeat_last: bool | None = None,
        identity: IdentityTracker | None = None,
    ):
        self.source = source
        self.several = several
        self.tracker = tracker
        self.identity = identity
        self.repeat_last = repeat_last
        self.frame_size = (info.width, info.height)
        self.warnings = list(source.warnings)
        self.known: list[str | None] = [] if several else [None]
        self.last: dict[str | None, np.ndarray] = {}  # the row last kept, per person

    def faces(self, frames: Sequence[Frame]) -> list[Faces]:
        """For each frame, the face of every person known so far, in order of their labels
        (None: the one person of a single-face source)."""
        found = []
        source_faces = self.source.faces(frames)
        identified = None
        if self.identity is not None:
            identified = self.identity.update(frames, source_faces)
        for k, (frame, faces) in enumerate(zip(frames, source_faces)):
            if identified is not None:
                seen = {self._label(n): face for n, face in identified[k].items()}
            else:
                seen = self._seen(frame, faces)
            new = [
                label
                for label, face in seen.items()
                if label not in self.known and face.box is not None and face.conf > 0
            ]
            if new:
                self.known = sorted([*self.known, *new], key=face_id)
            found.append({label: self._face(label, seen.get(label)) for label in self.known})
        return found

    def _seen(self, frame: Frame, faces: list[FrameFace]) -> dict[str | None, FrameFace]:
        """Who each face of a frame belongs to."""
        if not self.several:
            best = best_face(faces)
            return {} if best is None else {None: best}
        if self.tracker is None:  # the box file's people
            return {person_label(face.person): face for face in faces}
        boxes = np.array([face.box for face in faces]).reshape(-1, 4)
        ids = self.tracker.update(frame.index, boxes, np.array([face.conf for face in faces]))
        return {person_label(int(i)): face for face, i in zip(faces, ids) if i > 0}

    def _label(self, number: int) -> str:
        return person_label(number, self.identity.names.get(number))

    def identity_report(self) -> dict | None:
        """What the summary records of identity: cuts found, and per person label their
        frames, identity decisions and checks, and gallery name; None without identity."""
        if self.identity is None:
            return None
        gallery = self.identity.gallery
        return {
            "cuts": self.identity.cut_count,
            "gallery": None if gallery is None else gallery.describe(),
            "people": {
                self._label(number): record.as_dict()
                for number, record in sorted(self.identity.records.items())
            },
        }

    def described_people(self) -> list[tuple[int, str | None, object]]:
        """Each person identity described: number, gallery name (None) and descriptors."""
        if self.identity is None:
            return []
        names = self.identity.names
        return [
            (number, names.get(number), kept)
            for number, kept in sorted(self.identity.book.kept.items())
            if number in self.identity.records
        ]

    def _face(self, label: str | None, face: FrameFace | None) -> FrameFace:
        if self.repeat_last is None:
            return NO_FACE if face is None else face
        detection = None if face is None else face.detection
        row = kept_row(detection, self.last.get(label), self.repeat_last)
        self.last[label] = row
        kept = faces_of_rows(row[None], self.frame_size)[0]
        if face is not None and face.distance is not None:
            kept = replace(kept, distance=face.distance)
        return kept

    def absent(self, label: str | None) -> FrameFace:
        """A person's face in the frames before they appear."""
        if self.repeat_last is None:
            return NO_FACE
        return faces_of_rows(kept_row(None, None, self.repeat_last)[None], self.frame_size)[0]


def best_face(faces: Sequence[FrameFace]) -> FrameFace | None:
    """The face with the highest confidence (the first one on ties), or None."""
    if not faces:
        return None
    return faces[int(np.argmax([face.conf for face in faces]))]


def open_people(source: BoxSource, info: MediaInfo) -> People:
    """The people of the input described by `info`, their faces from `source`."""
    if source.full_frame:
        return People(WholeFrameFaces(info), info)
    settings = source.detect
    if settings is not None:
        several = settings.max_faces > 1
        tracker = identity = None
        warnings = []
        if several:
            tracking = {
                "max_faces": settings.max_faces,
                "patience": settings.track_patience,
                "confirm": settings.track_confirm,
            }
            if settings.identity:
                identity, problem = identity_tracker(stream_rate(info), settings, tracking)
                warnings += [problem] if problem else []
            if identity is None:
                tracker = Tracker(stream_rate(info), **tracking)
        faces = DetectedFaces(info, settings)
        people = People(
            faces,
            info,
            several=several,
            tracker=tracker,
            repeat_last=settings.repeat_last,
            identity=identity,
        )
        people.warnings += warnings
        return people
    people = box_file_people(source, info)
    return People(BoxFileFaces(people, info), info, several=list(people) != [None])


def identity_tracker(
    fps: float, settings, tracking: dict
) -> tuple[IdentityTracker | None, str | None]:
    """The identity tracker of detected people, or None and what is lost without the extra."""
    from emonet_cli.faces.identity.descriptor import IdentityUnavailable, load_describer

    try:
        describer = load_describer()
    except IdentityUnavailable as missing:
        return None, missing_identity_warning(str(missing))
    book, names = (None, None) if settings.gallery is None else settings.gallery.book()
    tracker = IdentityTracker(fps, describer, book=book, names=names, **tracking)
    tracker.gallery = settings.gallery
    return tracker, None


def missing_identity_warning(reason: str) -> str:
    """The one warning a run without the identity extra gives."""
    return (
        f"people are told apart by position only: {reason}; without it a person who leaves "
        "for longer than --track-patience or swaps places at a cut gets another number"
    )


def faces_of(frames: Iterable[Frame], people: People) -> Iterator[tuple[Frame, Faces]]:
    """Each frame with the face of every person known so far: the faces of one input, as
    `emonet detect` writes them and the analysis crops them. Faces are found FACE_CHUNK
    frames at a time, so that a detector runs batched."""
    frames = iter(frames)
    while chunk := list(itertools.islice(frames, FACE_CHUNK)):
        yield from zip(chunk, people.faces(chunk))
