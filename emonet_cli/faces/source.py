"""Where an input's faces come from: the `BoxSource` of each input, and two of the three kinds
of `face.FaceSource` (box files and the whole frame; the detector is `detection.detector`).

A `BoxSource` names the faces of one input: a box file, boxes already in memory (handed over by
DISCOVER), the whole frame (images that are already face crops), or the built-in detector.
`people.open_people` turns it into the input's people. `BoxOptions` are a run's box options,
which give each input its `BoxSource`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.faces.align import BOX_KINDS
from emonet_cli.faces.boxfiles import BOX_FILE_SUFFIXES, FaceBoxes, read_box_file, read_boxes
from emonet_cli.faces.face import FrameFace
from emonet_cli.faces.on_frame import off_frame, off_frame_warning
from emonet_cli.media.frames import Frame, MediaInfo

if TYPE_CHECKING:
    from emonet_cli.faces.detection.detector import DetectionSettings

TIME_EPSILON = 1e-6
SAME_RATE_TOLERANCE = 5e-4


@dataclass(frozen=True)
class BoxSource:
    """Where an input's faces are: a box file (`path`; a CSV with a face column holds several
    people), box files one per person (`paths`), boxes in memory (`boxes`), the whole frame
    (`full_frame`: already cropped faces), or the frames themselves (`detect`). `kind` says
    what the boxes frame (one of align.BOX_KINDS): faces, or whole people; a detector finds
    faces."""

    path: Path | None = None
    full_frame: bool = False
    boxes: FaceBoxes | None = None
    detect: DetectionSettings | None = None
    paths: tuple[Path, ...] = ()
    kind: str = "face"

    def __post_init__(self) -> None:
        if self.kind not in BOX_KINDS:
            raise ValueError(f"kind must be one of {', '.join(BOX_KINDS)}, not {self.kind!r}")
        if self.kind != "face" and (self.detect or self.full_frame):
            raise ValueError("detected faces and whole frames are faces, not person boxes")
        given = [
            self.path is not None,
            self.full_frame,
            self.boxes is not None,
            self.detect,
            self.paths,
        ]
        if sum(bool(g) for g in given) != 1:
            raise ValueError(
                "a BoxSource needs exactly one of path, paths, boxes, full_frame, detect"
            )

    def describe(self) -> str:
        """How the summary JSON names the source."""
        if self.full_frame:
            return "full frame"
        if self.detect is not None:
            return "detected"
        if self.paths:
            return ", ".join(str(path) for path in self.paths)
        return str(self.path if self.path is not None else self.boxes.source)


class WholeFrameFaces:
    """Every frame is a face crop."""

    def __init__(self, info: MediaInfo):
        self.face = FrameFace(np.array([0.0, 0.0, info.width, info.height]), 1.0, True)
        self.warnings: list[str] = []

    def faces(self, frames: Sequence[Frame]) -> list[list[FrameFace]]:
        return [[self.face] for _ in frames]


class BoxFileFaces:
    """The faces of box files (or boxes in memory), one per person in them (`people`: {face
    number: boxes}, {None: boxes} for a file of one face). A frame's box is stream sample
    floor(t * sr) for SSI streams (the frame index when the rates are equal), the frame index
    for CSV boxes, the file name for image lists."""

    def __init__(self, people: dict[int | None, FaceBoxes], info: MediaInfo):
        self.people = people
        self.info = info
        # Per person: the row of the input in an image list (None: not a list), and whether
        # stream samples are frames. DISCOVER writes rates with 3 decimals (29.970 for
        # 30000/1001): equal rates as written mean one sample per frame, which floor(t * sr)
        # would miss by one after a while.
        self.image_rows = {
            person: _find_image_row(boxes, info.path) if boxes.images is not None else None
            for person, boxes in people.items()
        }
        self.index_aligned = {
            person: boxes.sr is not None and abs(boxes.sr - info.fps) < SAME_RATE_TOLERANCE
            for person, boxes in people.items()
        }
        # Boxes wholly off the frame are no face, whatever the model family (see on_frame).
        self.off_frame = {
            person: off_frame(boxes.boxes, info.width, info.height)
            for person, boxes in people.items()
        }
        self.warnings = [message for person in people for message in self._warnings(person)]

    def _sample(self, person: int | None, index: int, time_s: float) -> int:
        boxes, image_row = self.people[person], self.image_rows[person]
        if image_row is not None:
            return image_row
        if boxes.sr is None or self.index_aligned[person]:
            return index
        return math.floor(time_s * boxes.sr + TIME_EPSILON)

    def faces(self, frames: Sequence[Frame]) -> list[list[FrameFace]]:
        found = []
        for frame in frames:
            faces = []
            for person, boxes in self.people.items():
                row = boxes.row(self._sample(person, frame.index, frame.time))
                if row is not None and not self.off_frame[person][row]:
                    points = None if boxes.keypoints is None else boxes.keypoints[row]
                    faces.append(
                        FrameFace(
                            boxes.boxes[row], float(boxes.conf[row]), person=person,
                            keypoints=points,
                        )
                    )  # fmt: skip
            found.append(faces)
        return found

    def _warnings(self, person: int | None) -> list[str]:
        """Warnings about a person's boxes in this input: empty or inverted boxes, and a box
        stream and a video that differ by more than one frame."""
        off, image_row = self.off_frame[person], self.image_rows[person]
        if image_row is not None:  # a list may cover many images: only this one's box
            off = off[[image_row]]
        size = (self.info.width, self.info.height)
        return [
            *self._empty_box_warnings(person),
            *off_frame_warning(self.info.path, self.people[person].source, off, size),
            *self._duration_warnings(person),
        ]

    def _empty_box_warnings(self, person: int | None) -> list[str]:
        boxes, image_row = self.people[person], self.image_rows[person]
        empty = boxes.empty_or_inverted()
        hint = "x, y, width, height given instead of two corners?"
        name = boxes.source.name
        if image_row is not None:  # a list may cover many images: only this one's box
            if not empty[image_row]:
                return []
            return [f"{self.info.path}: its box in {name} is empty or inverted: no face ({hint})"]
        count = int(empty.sum())
        if not count:
            return []
        return [
            f"{self.info.path}: {count} of {len(empty)} boxes in {name} are empty or inverted "
            f"(x2 <= x1 or y2 <= y1): no face in those frames ({hint})"
        ]

    def _duration_warnings(self, person: int | None) -> list[str]:
        boxes = self.people[person]
        if boxes.sr is None or self.info.is_image:
            return []
        stream_duration = len(boxes) / boxes.sr
        if abs(stream_duration - self.info.duration) > 1.0 / self.info.fps + TIME_EPSILON:
            return [
                f"{self.info.path}: the box stream {boxes.source.name} lasts "
                f"{stream_duration:.3f} s, the video {self.info.duration:.3f} s; frames past "
                "the end of the stream have no face"
            ]
        return []


def box_file_people(source: BoxSource, info: MediaInfo) -> dict[int | None, FaceBoxes]:
    """The people of a box source's files (or boxes in memory): {face number: boxes} for a
    CSV with a face column, one file per person (numbered in their order) or an image listed
    on several lines (numbered by line); else {None: boxes}."""
    frame_size = (info.width, info.height)
    if source.paths:
        return {n: read_boxes(path, frame_size) for n, path in enumerate(source.paths, 1)}
    if source.boxes is not None:
        return {None: source.boxes}
    people = read_box_file(source.path, frame_size)
    if list(people) == [None] and people[None].images is not None:
        rows = listed_rows(people[None], info.path)
        if len(rows) > 1:  # an image listed on several lines: one person per line
            return {n: _listed_row(people[None], row) for n, row in enumerate(rows, 1)}
    return people


def _listed_row(boxes: FaceBoxes, row: int) -> FaceBoxes:
    """One line of an image list, as a list of its own (one person's box)."""
    return FaceBoxes(
        boxes.boxes[row : row + 1], boxes.conf[row : row + 1], None, [boxes.images[row]],
        boxes.source,
    )  # fmt: skip


def _find_image_row(boxes: FaceBoxes, image: Path) -> int:
    return listed_rows(boxes, image)[0]


def listed_rows(boxes: FaceBoxes, image: Path) -> list[int]:
    """The rows of an image list that give boxes of `image` (one per person in it): those
    whose path is the image's, else those of the one listed image of the same name."""
    target = image.resolve()
    rows = []
    for row, listed in enumerate(boxes.images):
        listed_path = Path(listed)
        candidates = (
            [listed_path]
            if listed_path.is_absolute()
            else [boxes.source.parent / listed_path, Path.cwd() / listed_path]
        )
        if any(c.resolve() == target for c in candidates):
            rows.append(row)
    if rows:
        return rows
    same_name = [row for row, listed in enumerate(boxes.images) if Path(listed).name == image.name]
    if same_name and len({boxes.images[row] for row in same_name}) == 1:
        return same_name
    raise InputError(f"{image}: not listed in the box list {boxes.source}")


@dataclass(frozen=True, kw_only=True)
class BoxOptions:
    """The box options of a run (`--bbox`, `--bbox-dir`, `--full-frame`, `--detect`): at most
    one. With none, an input uses the box file beside it (NAME.stream or NAME.csv) when there
    is one, else the detector finds its faces."""

    bbox: Path | tuple[Path, ...] | None = None  # several: one box file per person
    bbox_dir: Path | None = None
    full_frame: bool = False
    detect: bool = False  # detect even where a box file sits beside the input
    detection: DetectionSettings | None = None  # how; None: the defaults
    box_kind: str = "face"  # what the boxes of box files frame (align.BOX_KINDS)

    def __post_init__(self) -> None:
        given = [bool(self.bbox), self.bbox_dir is not None, self.full_frame, self.detect]
        if sum(given) > 1:
            raise ValueError("give only one of --bbox, --bbox-dir, --full-frame and --detect")
        if self.box_kind not in BOX_KINDS:
            raise ValueError(f"box_kind must be one of {', '.join(BOX_KINDS)}")

    def bbox_files(self) -> tuple[Path, ...]:
        """The --bbox files: one, or one per person."""
        if isinstance(self.bbox, (tuple, list)):
            return tuple(Path(path) for path in self.bbox)
        return () if self.bbox is None else (Path(self.bbox),)

    def source_for(self, media: Path, subfolder: Path = Path(".")) -> BoxSource:
        """The box source of one input found in `subfolder` of a folder input."""
        if self.full_frame:
            return BoxSource(full_frame=True)
        bbox, kind = self.bbox_files(), self.box_kind
        if len(bbox) > 1:
            return BoxSource(paths=bbox, kind=kind)
        if bbox:
            return BoxSource(path=bbox[0], kind=kind)
        if self.bbox_dir is not None:
            return BoxSource(path=find_box_file(media, self.bbox_dir, subfolder), kind=kind)
        # Several faces per frame are only ever found by detecting: a box file beside the
        # input holds one face.
        several = self.detection is not None and self.detection.max_faces > 1
        beside = None if self.detect or several else box_file_beside(media)
        if beside is not None:
            return BoxSource(path=beside, kind=kind)
        from emonet_cli.faces.detection.detector import DetectionSettings

        return BoxSource(detect=self.detection or DetectionSettings())


def box_file_beside(media: Path) -> Path | None:
    """NAME.stream or NAME.csv next to the input NAME.ext, if there is one."""
    for suffix in BOX_FILE_SUFFIXES:
        candidate = media.with_name(media.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def find_box_file(media: Path, bbox_dir: Path, subfolder: Path = Path(".")) -> Path:
    """The box file of `media` in `bbox_dir`: DIR/SUBFOLDER/NAME.stream or .csv for an input
    found in a sub-folder of a folder input, else DIR/NAME.*."""
    for folder in dict.fromkeys([bbox_dir / subfolder, bbox_dir]):
        for suffix in BOX_FILE_SUFFIXES:
            candidate = folder / f"{media.stem}{suffix}"
            if candidate.is_file():
                return candidate
    looked_for = " and ".join(f"{media.stem}{suffix}" for suffix in BOX_FILE_SUFFIXES)
    raise InputError(f"{media}: no face boxes in {bbox_dir} (looked for {looked_for})")
