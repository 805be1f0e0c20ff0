"""`emonet detect` for one input: its people's faces written as DISCOVER's box streams.

The faces come through the same code as an analysis with the detector (`people.faces_of`), so
that analysing the streams written here equals analysing with the detector. One person:
`S.stream` and `S.keypoints.stream`. Several (max_faces above 1): `S.faceK.stream` and
`S.faceK.keypoints.stream` per person (a late person's earlier frames as `People.absent`), and
the overview `S.faces.csv` of the faces seen; every file appears only once all are complete.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.faces import BoxSource
from emonet_cli.faces.detection.boxstream import (
    KEYPOINT_SUFFIX,
    BoxStreamWriter,
    keypoint_stream_path,
)
from emonet_cli.faces.detection.detector import DetectionSettings, stream_rate
from emonet_cli.faces.face import PERSON_PREFIX
from emonet_cli.faces.people import FACE_CHUNK, Faces, People, faces_of, open_people
from emonet_cli.formats.fileio import (
    part_files_listed_once,
    remove_partial_files,
    remove_partial_files_matching,
)
from emonet_cli.formats.leftovers import person_results, remove_leftovers
from emonet_cli.media.frames import Frame, MediaInfo
from emonet_cli.media.video import MediaReader
from emonet_cli.outputs.writers import FACES_SUFFIX, FacesCsvWriter

BACKFILL_ROWS = 4096  # rows per write when a late person's stream catches up


@dataclass
class DetectedStreams:
    """What detect_file wrote, and what it holds."""

    people: dict[str | None, tuple[Path, Path]]  # person -> box stream, keypoint stream
    faces: Path | None  # S.faces.csv, with several people
    frames: int
    frames_with_face: int  # frames with at least one face seen (confidence above 0)
    sr: float
    frame_size: tuple[int, int]  # width, height
    outputs: list[Path] = field(default_factory=list)  # every file, the main one last
    described: list = field(default_factory=list)  # (name, descriptors): for --save-people

    @property
    def boxes(self) -> Path:
        """The one person's box stream S.stream (ymin, xmin, ymax, xmax, conf)."""
        return self.people[None][0]

    @property
    def keypoints(self) -> Path:
        """The one person's S.keypoints.stream (six y, x pairs, conf)."""
        return self.people[None][1]


@part_files_listed_once()  # its folder is read once, not once per file written
def detect_file(
    path: str | Path,
    settings: DetectionSettings,
    output_dir: str | Path | None = None,
    on_start: Callable[[MediaInfo], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> DetectedStreams:
    """Detect the faces of every frame of a video (or of an image) and write their box
    streams into `output_dir` (default: beside the input), one sample per frame at the
    video's frame rate (1 for an image), as DISCOVER's blazeface module does (see the module
    docstring for the files)."""
    with MediaReader(path) as reader:
        info = reader.info
        folder = Path(output_dir) if output_dir is not None else info.path.parent
        people = open_people(BoxSource(detect=settings), info)
        faces_path = folder / (info.path.stem + FACES_SUFFIX) if people.several else None
        _remove_stale_parts(folder, info.path.stem, faces_path)
        if on_start is not None:
            on_start(info)
        writers: dict[str | None, BoxStreamWriter] = {}
        faces_csv = FacesCsvWriter(faces_path) if faces_path is not None else None
        overview = [faces_csv] if faces_csv is not None else []  # published last
        frames = found = done = 0
        try:
            for frame, faces in faces_of(reader, people):
                for label, face in faces.items():
                    if label not in writers:
                        writers[label] = _writer(folder, info, label, frames, people)
                    writers[label].append(face.detection[None])
                seen = [label for label, face in faces.items() if face.conf > 0]
                if faces_csv is not None:
                    _add_seen(faces_csv, frame, seen, faces)
                found += bool(seen)
                frames += 1
                done += 1
                if on_batch is not None and done == FACE_CHUNK:
                    on_batch(done)
                    done = 0
            if on_batch is not None and done:
                on_batch(done)
            if frames == 0:
                raise InputError(f"{path}: no frame could be decoded")
            for writer in [*writers.values(), *overview]:
                writer.finish()
            published = {label: writer.publish() for label, writer in writers.items()}
            for writer in overview:
                writer.publish()
        except BaseException:
            for writer in [*writers.values(), *overview]:
                writer.abort()
            raise
    if faces_path is None:
        outputs = [published[None][1], published[None][0]]
    else:
        outputs = [p for pair in published.values() for p in pair] + [faces_path]
        # The streams of people an earlier run into this folder had and this one has not.
        earlier = person_results(
            folder, info.path.stem, (".stream", f"{KEYPOINT_SUFFIX}.stream"), _names(settings)
        )
        remove_leftovers(earlier, [*outputs, *(Path(f"{p}~") for p in outputs)], [info.path])
    size = (info.width, info.height)
    described = described_people(people, info.path.stem)
    return DetectedStreams(
        published, faces_path, frames, found, stream_rate(info), size, outputs, described
    )


def described_people(people: People, stem: str) -> list:
    """(name, descriptors) of each person identity described: their gallery name, else a
    name made from the input and their number (see gallery.saved_name)."""
    from emonet_cli.faces.identity.gallery import saved_name

    return [
        (name or saved_name(stem, number), kept) for number, name, kept in people.described_people()
    ]


def _names(settings: DetectionSettings) -> tuple[str, ...]:
    """The gallery's names: people of an earlier run with this gallery."""
    return () if settings.gallery is None else settings.gallery.names


def stream_path(folder: Path, stem: str, label: str | None) -> Path:
    """S.stream of the one person, S.faceK.stream of person faceK."""
    return folder / (f"{stem}.stream" if label is None else f"{stem}.{label}.stream")


def _writer(
    folder: Path, info: MediaInfo, label: str | None, frames_before: int, people: People
) -> BoxStreamWriter:
    """A person's stream writer, caught up with the frames before their first appearance."""
    target = stream_path(folder, info.path.stem, label)
    writer = BoxStreamWriter(target, (info.width, info.height), stream_rate(info))
    before = people.absent(label).detection
    for start in range(0, frames_before, BACKFILL_ROWS):
        rows = min(BACKFILL_ROWS, frames_before - start)
        writer.append(np.repeat(before[None], rows, axis=0))
    return writer


def _add_seen(faces_csv: FacesCsvWriter, frame: Frame, seen: list, faces: Faces) -> None:
    if not seen:
        return
    faces_csv.add(
        np.full(len(seen), frame.index),
        np.full(len(seen), frame.time),
        np.array(seen, dtype=object),  # labels keep their numbers
        np.array([faces[label].box for label in seen]),
        np.array([faces[label].conf for label in seen], dtype=np.float32),
        np.array([_or_nan(faces[label].distance) for label in seen], dtype=np.float32),
    )


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _remove_stale_parts(folder: Path, stem: str, faces_path: Path | None) -> None:
    """Part files a killed run left (of its own names; never another live process's)."""
    if faces_path is None:
        target = stream_path(folder, stem, None)
        names = [target, keypoint_stream_path(target)]
    else:
        names = [faces_path]
    for name in names:
        for file in (name, name.with_name(name.name + "~")):
            remove_partial_files(file)
    if faces_path is not None:
        remove_partial_files_matching(folder, f"{glob.escape(stem)}.{PERSON_PREFIX}*")
