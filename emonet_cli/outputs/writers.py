"""Output files of an analysis, written batch by batch as results arrive, and the one table
(`OUTPUTS`) that says which files an analysis writes.

Each writer streams into temporary files and renames them only in `close()`, so a run that is
interrupted leaves no partial result; `abort()` removes what was written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from emonet_cli.constants import EMBEDDING_SIZE, N_LANDMARKS, Classes
from emonet_cli.faces.detection.boxstream import BoxStreamWriter
from emonet_cli.faces.faces_csv import FACES_SUFFIX
from emonet_cli.formats.annotations import (
    ContinuousAnnotationWriter,
    ContinuousScheme,
    DiscreteAnnotationWriter,
    DiscreteScheme,
)
from emonet_cli.formats.fileio import PendingFile, WrappedWriter, atomic_open
from emonet_cli.formats.streams import StreamWriter, format_float
from emonet_cli.media.frames import IMAGE_SUFFIXES, MediaInfo
from emonet_cli.media.selection import FrameSelection, Timeline, laid_out
from emonet_cli.outputs.results import ResultBatch, csv_columns

SUMMARY_SUFFIX = ".emonet.json"


@dataclass(frozen=True, kw_only=True)
class OutputOptions:
    """Which files to write, and where: `directory` None means beside each input."""

    directory: Path | None = None
    landmarks: bool = False
    embeddings: bool = False
    merge: bool = False
    annotation_ftype: str = "ASCII"
    box_stream: bool = False  # the faces were detected: write the box streams that were used


@dataclass(frozen=True)
class WriterContext:
    """What every writer may need to know about the analysis it records."""

    info: MediaInfo
    nclass: int
    options: OutputOptions
    meta: dict  # role and description for NOVA headers
    selection: FrameSelection | None = None  # None: every frame (images ignore it)
    person: str | None = None  # whose results, with several people: `face1`...
    classes: Classes | None = None  # names and colours; None: the published ones of nclass

    @property
    def class_set(self) -> Classes:
        return self.classes or Classes.default(self.nclass)

    @property
    def frame_rate(self) -> float:
        """The sample rate of the time series written: the video's, or the selection's."""
        if self.info.is_image:
            return 1.0
        if self.selection is not None and self.selection.sample_rate is not None:
            return self.selection.sample_rate
        return self.info.fps

    def timeline(self) -> Timeline | None:
        """How analysed frames become the samples of a time series; None: one per row."""
        if self.selection is None or self.info.is_image:
            return None
        return Timeline(self.selection)


class ResultWriter(Protocol):
    """Writes one output (`paths`: all its files) batch by batch. finish() writes everything
    out, publish() renames it into place: see `close_all`."""

    paths: list[Path]

    def add(self, batch: ResultBatch) -> None: ...

    def finish(self) -> None: ...

    def publish(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def close_all(writers: list[ResultWriter]) -> None:
    """Finish every writer, then publish them all: a disk that fills up while the last file is
    written out leaves none of an input's new files beside its earlier results."""
    for writer in writers:
        writer.finish()
    for writer in writers:
        writer.publish()


class CsvWriter(WrappedWriter):
    """`S.csv`: one row per frame, the columns of `csv_columns`."""

    def __init__(self, path: Path, context: WriterContext):
        self.paths = [path]
        self.names = context.class_set.names
        self._writer = PendingFile(path, binary=False)
        self._csv = csv.writer(self._writer.file, lineterminator="\n")
        self._csv.writerow(csv_columns(self.names))

    def add(self, batch: ResultBatch) -> None:
        for i in range(len(batch)):
            face = bool(batch.face[i])
            label = int(batch.expression[i])
            self._csv.writerow(
                [
                    int(batch.frame[i]),
                    f"{batch.time[i]:.6f}",
                    int(face),
                    format_float(batch.face_conf[i]),
                    label,
                    self.names[label] if face else "",
                    format_float(batch.probabilities[i, label] if face else np.float32("nan")),
                    format_float(batch.valence[i]),
                    format_float(batch.arousal[i]),
                    *(format_float(p) for p in batch.probabilities[i]),
                ]
            )


class ExpressionAnnotationWriter(WrappedWriter):
    """`S.expression.annotation`: a discrete NOVA annotation, one segment per frame from its
    time to the next frame's, or per run of equal labels with `merge`. No-face frames are
    garbage segments (id -1, confidence 0)."""

    def __init__(self, path: Path, context: WriterContext):
        classes = context.class_set
        scheme = DiscreteScheme("emotion", list(classes.names), list(classes.colors))
        ftype = context.options.annotation_ftype
        self._writer = DiscreteAnnotationWriter(path, scheme, ftype=ftype, **context.meta)
        self.paths = self._writer.paths
        self.frame_duration = 1.0 / context.frame_rate
        self.merge = context.options.merge
        self._open: list | None = None  # [start, label, conf sum, count] of the pending segment

    def _emit(self, end: float) -> None:
        start, label, conf_sum, count = self._open
        conf = conf_sum / count if label >= 0 else 0.0
        self._writer.append(np.array([start]), np.array([end]), np.array([label]), np.array([conf]))

    def add(self, batch: ResultBatch) -> None:
        for time, label, conf in zip(batch.time, batch.expression, batch.expression_conf):
            label = int(label)
            if self._open is not None:
                if self.merge and self._open[1] == label:
                    self._open[2] += float(conf)
                    self._open[3] += 1
                    continue
                self._emit(float(time))
            self._open = [float(time), label, float(conf), 1]
        self._last_time = float(batch.time[-1]) if len(batch) else None

    def finish(self) -> None:
        if self._open is not None:
            self._emit(last_frame_end(self._last_time, self.frame_duration))
            self._open = None
        self._writer.finish()


def last_frame_end(time: float, frame_duration: float) -> float:
    """Where the last frame's segment ends: one nominal frame after it starts."""
    return round(float(time) + frame_duration, 6)


def frame_segments(time: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of one segment per frame, as ExpressionAnnotationWriter writes them
    without `merge`: from the frame's time to the next frame's."""
    if len(time) == 0:
        return time.copy(), time.copy()
    return time.copy(), np.append(time[1:], last_frame_end(time[-1], 1.0 / fps))


class DimensionAnnotationWriter(WrappedWriter):
    """`S.valence.annotation` or `S.arousal.annotation`: continuous, one sample per frame at the
    video's frame rate in [-1, 1]; no-face samples are NaN with confidence 0."""

    def __init__(self, path: Path, context: WriterContext, dimension: str):
        self.dimension = dimension
        scheme = ContinuousScheme(dimension, sr=context.frame_rate, min=-1.0, max=1.0)
        ftype = context.options.annotation_ftype
        self._writer = ContinuousAnnotationWriter(path, scheme, ftype=ftype, **context.meta)
        self.paths = self._writer.paths
        self.timeline = context.timeline()

    def add(self, batch: ResultBatch) -> None:
        score = getattr(batch, self.dimension)
        rows = self.timeline.rows(batch.frame, batch.time) if self.timeline else None
        self._writer.append(laid_out(score, rows, np.nan), laid_out(batch.face_conf, rows, 0.0))


class FeatureStreamWriter(WrappedWriter):
    """`S.landmarks.stream` (x, y of the 68 landmarks in frame pixels) or `S.embedding.stream`
    (the 256 pooled features): an SSI stream of float32, NaN rows without a face."""

    def __init__(self, path: Path, context: WriterContext, feature: str):
        self.feature = feature
        dim = 2 * N_LANDMARKS if feature == "landmarks" else EMBEDDING_SIZE
        self._writer = StreamWriter(path, dim=dim, sr=context.frame_rate)
        self.paths = self._writer.paths
        self.timeline = context.timeline()

    def add(self, batch: ResultBatch) -> None:
        values = getattr(batch, self.feature).reshape(len(batch), -1)
        rows = self.timeline.rows(batch.frame, batch.time) if self.timeline else None
        self._writer.append(laid_out(values, rows, np.nan))


class DetectedBoxesWriter(WrappedWriter):
    """`S.stream` and `S.keypoints.stream`: the faces the detector found, as DISCOVER's
    blazeface module writes them, so that the analysis can be repeated from the stream (and
    the boxes opened in NOVA)."""

    def __init__(self, path: Path, context: WriterContext):
        size = (context.info.width, context.info.height)
        self._writer = BoxStreamWriter(path, size, context.frame_rate)
        self.paths = [*self._writer.boxes.paths, *self._writer.keypoints.paths]
        self.timeline = context.timeline()

    def add(self, batch: ResultBatch) -> None:
        rows = self.timeline.rows(batch.frame, batch.time) if self.timeline else None
        # Padding is all zeros: no box, confidence 0, as DISCOVER writes without a face.
        self._writer.append_kept(laid_out(batch.detection, rows, 0.0))


def _always(options: OutputOptions, is_video: bool) -> bool:
    return True


def _videos_only(options: OutputOptions, is_video: bool) -> bool:
    # Annotations are time series: a still image gets none.
    return is_video


@dataclass(frozen=True)
class Output:
    """One kind of output file: the suffix added to the input's stem, when it is written,
    and the writer that writes it (called with the file's path and the WriterContext)."""

    suffix: str
    applies: Callable[[OutputOptions, bool], bool]  # (options, input is a video)
    open: Callable[[Path, WriterContext], ResultWriter]


OUTPUTS: tuple[Output, ...] = (
    Output(".csv", _always, CsvWriter),
    Output(".expression.annotation", _videos_only, ExpressionAnnotationWriter),
    Output(
        ".valence.annotation", _videos_only, partial(DimensionAnnotationWriter, dimension="valence")
    ),
    Output(
        ".arousal.annotation", _videos_only, partial(DimensionAnnotationWriter, dimension="arousal")
    ),
    Output(
        ".landmarks.stream",
        lambda options, is_video: options.landmarks,
        partial(FeatureStreamWriter, feature="landmarks"),
    ),
    Output(
        ".embedding.stream",
        lambda options, is_video: options.embeddings,
        partial(FeatureStreamWriter, feature="embedding"),
    ),
    Output(".stream", lambda options, is_video: options.box_stream, DetectedBoxesWriter),
)
CSV_OUTPUT, LANDMARKS_OUTPUT, BOX_STREAM_OUTPUT = OUTPUTS[0], OUTPUTS[4], OUTPUTS[6]


def output_path(path: Path, directory: Path | None, suffix: str, person: str | None = None) -> Path:
    """`S<suffix>` for the input `S.ext` (`S.<person><suffix>` for one of several people), in
    `directory` or beside the input."""
    folder = directory if directory is not None else path.parent
    return folder / (path.stem + (f".{person}" if person else "") + suffix)


def summary_path(path: Path, directory: Path | None) -> Path:
    """`S.emonet.json`, written last: its presence marks a complete analysis."""
    return output_path(path, directory, SUMMARY_SUFFIX)


def active_outputs(path: Path, options: OutputOptions) -> list[Output]:
    is_video = Path(path).suffix.lower() not in IMAGE_SUFFIXES
    return [output for output in OUTPUTS if output.applies(options, is_video)]


def planned_outputs(path: Path, options: OutputOptions, person: str | None = None) -> list[Path]:
    """The header / main files an analysis of `path` writes (of one person, with several),
    the summary JSON last."""
    names = [
        output_path(path, options.directory, o.suffix, person)
        for o in active_outputs(path, options)
    ]
    return [*names, summary_path(path, options.directory)]


def input_identity(path: Path) -> dict:
    """What the summary JSON records to tell later runs which file it belongs to."""
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_complete(
    path: Path, options: OutputOptions, selection: FrameSelection | None = None
) -> bool:
    """Whether every output of `path` is there and its summary was written for this very file
    (same name, size and modification time), not for another one of the same stem, and for
    the same frames (`selection`)."""
    planned = planned_outputs(path, options)
    try:
        summary = json.loads(planned[-1].read_text(encoding="utf-8"))
        wanted = selection.as_dict() if selection is not None else None
        if summary.get("input_file") != input_identity(Path(path)):
            return False
        if summary.get("selection") != wanted:
            return False
    except (OSError, ValueError, AttributeError):
        return False
    if "people" in summary:  # several people: each person's files, and their overview
        try:
            people = [person["person"] for person in summary["people"]]
        except (TypeError, KeyError):
            return False
        planned = [output_path(path, options.directory, FACES_SUFFIX), planned[-1]]
        for person in people:
            planned += planned_outputs(path, options, person)
    return all(p.exists() for p in planned)


def open_writers(context: WriterContext) -> list[ResultWriter]:
    """A writer for every output that applies; on failure none is left open."""
    writers: list[ResultWriter] = []
    try:
        for output in active_outputs(context.info.path, context.options):
            directory = context.options.directory
            path = output_path(context.info.path, directory, output.suffix, context.person)
            writers.append(output.open(path, context))
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return writers


def write_json(path: Path, document: dict) -> Path:
    """Write a JSON document atomically (NaN becomes null, so any JSON reader accepts it)."""
    text = json.dumps(_nan_to_none(document), indent=2, ensure_ascii=False)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return path


def _nan_to_none(value):
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
