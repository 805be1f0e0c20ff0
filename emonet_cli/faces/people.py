"""Several people in one input: each person's face, frame by frame, under a stable label.

A person is labelled `face1`, `face2`, ... (their outputs are `S.face1.csv`, ...): by the
tracker in order of first appearance, by the face column of a CSV, or by the order of
several box files given one per person. A `PeopleLookup` gives, for each decoded frame, the
face of every person known so far; a person is known from the first frame with a box of
confidence above 0. `S.faces.csv` is the overview of all of them, and reads back as box
input.
"""

from __future__ import annotations

from collections.abc import Sequence

from emonet_cli.faces.boxfiles import FaceBoxes, read_boxes, read_people_boxes
from emonet_cli.faces.lookup import NO_FACE, FaceLookup, FrameFace, PeopleLookup, person_label
from emonet_cli.faces.sources import BoxFileLookup, BoxSource, listed_rows, open_lookup
from emonet_cli.media.frames import Frame, MediaInfo


class OnePerson:
    """A single-face source (one box file, the whole frame, the best detection): one person
    without a label, whose outputs keep the input's plain names."""

    def __init__(self, lookup: FaceLookup):
        self.lookup = lookup

    def people(self, frames: Sequence[Frame]) -> list[dict[str | None, FrameFace]]:
        return [{None: face} for face in self.lookup.faces(frames)]

    def absent(self, label: str | None) -> FrameFace:
        return NO_FACE

    def warnings(self) -> list[str]:
        return self.lookup.warnings()


class BoxFilePeople:
    """Several people from box files: a CSV with a face column, or one file per person."""

    def __init__(self, people: dict[str, FaceBoxes], info: MediaInfo):
        self.lookups = {label: BoxFileLookup(boxes, info) for label, boxes in people.items()}
        self.known: set[str] = set()

    def people(self, frames: Sequence[Frame]) -> list[dict[str | None, FrameFace]]:
        faces = {label: lookup.faces(frames) for label, lookup in self.lookups.items()}
        found: list[dict[str | None, FrameFace]] = []
        for row in range(len(frames)):
            for label, person in faces.items():
                if person[row].box is not None and person[row].conf > 0:
                    self.known.add(label)
            found.append({label: faces[label][row] for label in faces if label in self.known})
        return found

    def absent(self, label: str | None) -> FrameFace:
        return NO_FACE

    def warnings(self) -> list[str]:
        return [message for lookup in self.lookups.values() for message in lookup.warnings()]


def listed_row(boxes: FaceBoxes, row: int) -> FaceBoxes:
    """One line of an image list, as a list of its own (one person's box)."""
    return FaceBoxes(
        boxes.boxes[row : row + 1], boxes.conf[row : row + 1], None, [boxes.images[row]],
        boxes.source,
    )  # fmt: skip


def open_people(source: BoxSource, info: MediaInfo) -> PeopleLookup:
    """The lookup that gives the faces of every person in `info`'s frames from `source`."""
    if source.detect is not None and source.detect.max_faces > 1:
        from emonet_cli.faces.detection.people import TrackedPeople

        return TrackedPeople(info, source.detect)
    if source.paths:
        frame_size = (info.width, info.height)
        return BoxFilePeople(
            {person_label(n): read_boxes(p, frame_size) for n, p in enumerate(source.paths, 1)},
            info,
        )
    if source.path is not None:
        people = read_people_boxes(source.path, (info.width, info.height))
        if list(people) != [None]:
            return BoxFilePeople({person_label(n): b for n, b in people.items()}, info)
        if people[None].images is not None:
            rows = listed_rows(people[None], info.path)
            if len(rows) > 1:  # an image listed on several lines: one person per line
                return BoxFilePeople(
                    {
                        person_label(n): listed_row(people[None], row)
                        for n, row in enumerate(rows, 1)
                    },
                    info,
                )
        return OnePerson(BoxFileLookup(people[None], info))
    return OnePerson(open_lookup(source, info))
