"""Every face the detector finds, kept apart by the tracker: one DISCOVER box stream per person.

Per frame, the detections scoring at least `min_score` are squared as DISCOVER squares its one
face, then the tracker (`emonet_cli.faces.tracking`) gives the best `max_faces` of them person ids.
Each person then has what DISCOVER's module writes for its one face: their detection in the
frames they are seen, and in the others their last one repeated at confidence 0 (before
their first, the whole frame at confidence 0); `S.face1.stream`, `S.face2.stream`, ... hold
these rows, and `S.faces.csv` lists the faces seen.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.faces.detection.boxstream import (
    KEYPOINT_SUFFIX,
    BoxStreamWriter,
    RepeatLast,
    keypoint_stream_path,
)
from emonet_cli.faces.detection.postprocess import DETECTION_COLUMNS, SCORE
from emonet_cli.faces.detection.source import DetectionSettings, face_from_kept, stream_rate
from emonet_cli.faces.faces_csv import FACES_SUFFIX, FacesCsvWriter
from emonet_cli.faces.lookup import PERSON_PREFIX, FrameFace, face_id, person_label
from emonet_cli.faces.tracking import Tracker
from emonet_cli.formats.fileio import remove_partial_files, remove_partial_files_matching
from emonet_cli.formats.leftovers import person_results, remove_leftovers
from emonet_cli.media.frames import Frame, MediaInfo
from emonet_cli.media.video import MediaReader

BACKFILL_ROWS = 4096  # rows per write when a late person's stream catches up


class TrackedPeople:
    """The faces of every tracked person, frame by frame in decoding order."""

    def __init__(self, info: MediaInfo, settings: DetectionSettings):
        from emonet_cli.faces.detection.boxstream import square_box

        self.info, self.settings = info, settings
        self.detector = settings.detector()
        self.tracker = Tracker(settings.tracking(), stream_rate(info))
        self.square = square_box if settings.square else None
        self.last: dict[str, RepeatLast | None] = {}
        self.fresh: list[dict[str, np.ndarray]] = []  # the detections of the last call's frames

    def people(self, frames: Sequence[Frame]) -> list[dict[str | None, FrameFace]]:
        if not frames:
            return []
        found = []
        self.fresh = []
        for frame, detections in zip(frames, self.detector.detect([f.image for f in frames])):
            fresh = self._track(frame.index, detections)
            self.fresh.append(fresh)
            faces: dict[str | None, FrameFace] = {}
            if any(label not in self.last for label in fresh):
                for label in fresh:
                    self.last.setdefault(label, RepeatLast() if self.settings.repeat_last else None)
                self.last = dict(sorted(self.last.items(), key=lambda item: face_id(item[0])))
            for label, repeat in self.last.items():
                faces[label] = face_from_kept(self._kept(fresh.get(label), repeat), self.info)
            found.append(faces)
        return found

    def _track(self, index: int, detections: np.ndarray) -> dict[str, np.ndarray]:
        """{person label: detection} of one frame."""
        detections = detections[detections[:, SCORE] >= self.settings.min_score]
        if self.square is not None:
            size = (self.info.width, self.info.height)
            detections = np.array([self.square(d, size) for d in detections]).reshape(-1, 17)
        width, height = self.info.width, self.info.height
        # Detections hold ymin, xmin, ymax, xmax normalised; the tracker works in pixels.
        boxes = detections[:, [1, 0, 3, 2]].astype(np.float64) * [width, height, width, height]
        ids = self.tracker.update(index, boxes, detections[:, SCORE])
        return {person_label(int(i)): detections[n] for n, i in enumerate(ids) if i > 0}

    @staticmethod
    def _kept(detection: np.ndarray | None, repeat: RepeatLast | None) -> np.ndarray:
        if repeat is not None:
            return repeat(detection)
        if detection is None:
            return np.zeros(DETECTION_COLUMNS, np.float32)
        return detection

    def absent(self, label: str | None) -> FrameFace:
        before = RepeatLast()(None) if self.settings.repeat_last else None
        return face_from_kept(self._kept(None, None) if before is None else before, self.info)

    def warnings(self) -> list[str]:
        return []


@dataclass
class PeopleStreams:
    """What detect_people_file wrote."""

    people: dict[str, tuple[Path, Path]]  # label -> box stream, keypoint stream
    faces: Path  # S.faces.csv
    frames: int
    frames_with_face: int  # frames with at least one face
    sr: float
    frame_size: tuple[int, int]
    paths: list[Path] = field(default_factory=list)


def people_outputs(folder: Path, stem: str, label: str) -> tuple[Path, Path]:
    target = folder / f"{stem}.{label}.stream"
    return target, keypoint_stream_path(target)


def detect_people_file(
    path: str | Path,
    settings: DetectionSettings,
    output_dir: str | Path | None = None,
    on_start: Callable[[MediaInfo], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> PeopleStreams:
    """Detect and track every face of a video (or image) and write `NAME.faceK.stream` (with
    its keypoint stream) per person and the overview `NAME.faces.csv` into `output_dir`
    (default: beside the input). Every file appears only once all are complete."""
    with MediaReader(path) as reader:
        info = reader.info
        folder = Path(output_dir) if output_dir is not None else info.path.parent
        faces_path = folder / (info.path.stem + FACES_SUFFIX)
        _remove_stale_parts(folder, info.path.stem, faces_path)
        if on_start is not None:
            on_start(info)
        lookup = TrackedPeople(info, settings)
        faces_csv = FacesCsvWriter(faces_path)
        writers: dict[str, BoxStreamWriter] = {}
        frames = found = 0
        try:
            iterator = iter(reader)
            while batch := list(itertools.islice(iterator, settings.batch_size)):
                people = lookup.people(batch)
                for frame, faces, fresh in zip(batch, people, lookup.fresh):
                    for label, face in faces.items():
                        if label not in writers:
                            writers[label] = _late_writer(folder, info, label, frames, lookup)
                        writers[label].append_kept(face.detection[None])
                    _add_fresh(faces_csv, frame, fresh, faces)
                    found += bool(fresh)
                    frames += 1
                if on_batch is not None:
                    on_batch(len(batch))
            if frames == 0:
                raise InputError(f"{path}: no frame could be decoded")
            everything = [*writers.values(), faces_csv]
            for writer in everything:
                writer.finish()
            published = {label: writer.publish() for label, writer in writers.items()}
            faces_csv.publish()
        except BaseException:
            for writer in [*writers.values(), faces_csv]:
                writer.abort()
            raise
    paths = [p for pair in published.values() for p in pair] + [faces_path]
    # The streams of people an earlier run into this folder had and this one has not.
    earlier = person_results(folder, info.path.stem, (".stream", f"{KEYPOINT_SUFFIX}.stream"))
    remove_leftovers(earlier, [*paths, *(Path(f"{p}~") for p in paths)], [info.path])
    size = (info.width, info.height)
    return PeopleStreams(published, faces_path, frames, found, stream_rate(info), size, paths)


def _late_writer(
    folder: Path, info: MediaInfo, label: str, frames_before: int, lookup: TrackedPeople
) -> BoxStreamWriter:
    """A person's stream writer, caught up with the frames before their first appearance."""
    target, _ = people_outputs(folder, info.path.stem, label)
    writer = BoxStreamWriter(target, (info.width, info.height), stream_rate(info))
    before = lookup.absent(label).detection
    for start in range(0, frames_before, BACKFILL_ROWS):
        rows = min(BACKFILL_ROWS, frames_before - start)
        writer.append_kept(np.repeat(before[None], rows, axis=0))
    return writer


def _add_fresh(faces_csv: FacesCsvWriter, frame: Frame, fresh: dict, faces: dict) -> None:
    labels = list(fresh)
    if not labels:
        return
    faces_csv.add(
        np.full(len(labels), frame.index),
        np.full(len(labels), frame.time),
        np.array(labels),
        np.array([faces[label].box for label in labels]),
        np.array([faces[label].conf for label in labels], dtype=np.float32),
    )


def _remove_stale_parts(folder: Path, stem: str, faces_path: Path) -> None:
    """Part files a killed run left (of its own names; never another live process's)."""
    for name in (faces_path, faces_path.with_name(faces_path.name + "~")):
        remove_partial_files(name)
    remove_partial_files_matching(folder, f"{glob.escape(stem)}.{PERSON_PREFIX}*")
