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

import numpy as np

from emonet_cli.constants import EMBEDDING_SIZE, N_LANDMARKS
from emonet_cli.faces.detection.boxstream import BoxStreamWriter
from emonet_cli.faces.face import face_id
from emonet_cli.formats.fileio import PendingFile, WrappedWriter, atomic_open
from emonet_cli.formats.names import json_escaped
from emonet_cli.formats.streams import StreamWriter, format_float
from emonet_cli.media.frames import IMAGE_SUFFIXES
from emonet_cli.media.selection import FrameSelection, laid_out
from emonet_cli.models.registry import ModelFamily
from emonet_cli.outputs.annotation_writers import (
    CategoryAnnotationWriter,
    DimensionAnnotationWriter,
    ExpressionAnnotationWriter,
)
from emonet_cli.outputs.context import OutputOptions, ResultWriter, WriterContext
from emonet_cli.outputs.results import (
    CATEGORY_SEPARATOR,
    DIMENSIONS,
    ResultBatch,
    category_slug,
    csv_columns,
)

QUALITY_DECIMALS = 2  # pose in degrees, face size in pixels, sharpness: more is noise

SUMMARY_SUFFIX = ".emonet.json"
FACES_SUFFIX = ".faces.csv"
FACES_COLUMNS = ("frame", "time", "face", "x1", "y1", "x2", "y2", "conf", "identity_distance")


class CsvWriter(WrappedWriter):
    """`S.csv`: one row per frame, the columns of `csv_columns` for the family's outputs."""

    def __init__(self, path: Path, context: WriterContext):
        self.paths = [path]
        self.model = context.options.model
        self.names = context.class_set.names
        self.expression = self.model.gives("expression")
        self.dimensions = [d for d in DIMENSIONS if self.model.gives(d)]
        self._writer = PendingFile(path, binary=False)
        self._csv = csv.writer(self._writer.file, lineterminator="\n")
        self._csv.writerow(csv_columns(self.names, self.model))

    def add(self, batch: ResultBatch) -> None:
        nan = np.float32("nan")
        scale = self.model.native_scale
        quality = quality_cells(batch)
        for i in range(len(batch)):
            face = bool(batch.face[i])
            row = [int(batch.frame[i]), f"{batch.time[i]:.6f}", int(face)]
            row.append(format_float(batch.face_conf[i]))
            if self.expression:
                label = int(batch.expression[i])
                row += [
                    label,
                    self.names[label] if face else "",
                    format_float(batch.probabilities[i, label] if face else nan),
                ]
            values = [getattr(batch, d)[i] for d in self.dimensions]
            row += [format_float(v) for v in values]
            if scale is not None:
                row += [format_float(native(v, scale)) for v in values]
            if self.model.categories:
                held = np.flatnonzero(batch.category_set[i])
                row.append(CATEGORY_SEPARATOR.join(self.model.categories[k] for k in held))
                row += [format_float(v) for v in batch.categories[i]]
            if self.expression:
                row += [format_float(p) for p in batch.probabilities[i]]
            self._csv.writerow(row + quality[i])


def quality_cells(batch: ResultBatch) -> list[list]:
    """Each row's last cells: yaw, pitch, roll, face size, sharpness (rounded to
    QUALITY_DECIMALS, NaN where unknown) and usable (0 or 1)."""
    pose, size, sharpness, usable = batch.quality()
    values = np.column_stack([pose, size, sharpness]).astype(np.float64)
    values = np.round(values, QUALITY_DECIMALS)
    return [
        [*(format_float(v) for v in values[i]), int(usable[i] and batch.face[i])]
        for i in range(len(batch))
    ]


def native(signed: np.float32, scale: tuple[float, float]) -> np.float64:
    """A [-1, 1] value on a family's own scale (EMOTIC: 1 to 10)."""
    low, high = scale
    return np.float64(signed) * (high - low) / 2 + (low + high) / 2


# Values per row of each feature stream.
FEATURE_DIMS = {"landmarks": 2 * N_LANDMARKS, "embedding": EMBEDDING_SIZE, "pose": 3}


class FeatureStreamWriter(WrappedWriter):
    """`S.landmarks.stream` (x, y of the 68 landmarks in frame pixels), `S.embedding.stream`
    (the 256 pooled features) or `S.pose.stream` (yaw, pitch, roll in degrees): an SSI stream
    of float32, NaN rows without a face (and, for the pose, where it is unknown)."""

    def __init__(self, path: Path, context: WriterContext, feature: str):
        self.feature = feature
        self._writer = StreamWriter(path, dim=FEATURE_DIMS[feature], sr=context.frame_rate)
        self.paths = self._writer.paths
        self.timeline = context.timeline()

    def add(self, batch: ResultBatch) -> None:
        values = batch.quality()[0] if self.feature == "pose" else getattr(batch, self.feature)
        values = values.reshape(len(batch), -1)
        rows = self.timeline.rows(batch.frame, batch.time) if self.timeline else None
        self._writer.append(laid_out(values, rows, np.nan))


class DetectedBoxesWriter(WrappedWriter):
    """`S.stream` and `S.keypoints.stream`: the faces the detector found, as DISCOVER's
    blazeface module writes them, so that the analysis can be repeated from the stream (and
    the boxes opened in NOVA)."""

    def __init__(self, path: Path, context: WriterContext):
        size = (context.info.width, context.info.height)
        self._writer = BoxStreamWriter(path, size, context.frame_rate)
        self.paths = self._writer.paths
        self.timeline = context.timeline()

    def add(self, batch: ResultBatch) -> None:
        rows = self.timeline.rows(batch.frame, batch.time) if self.timeline else None
        # Padding is all zeros: no box, confidence 0, as DISCOVER writes without a face.
        self._writer.append(laid_out(batch.detection, rows, 0.0))


class FacesCsvWriter(WrappedWriter):
    """`S.faces.csv`: the overview of every person's face, one row per face and frame (frame,
    time, face number, box corners in pixels, confidence, and the face's descriptor distance
    to its person where identity described it, else empty), in frame order; written
    atomically. It reads back as box input (`boxfiles.read_box_file`)."""

    def __init__(self, path: Path):
        self.paths = [path]
        self._writer = PendingFile(path, binary=False)
        self._csv = csv.writer(self._writer.file, lineterminator="\n")
        self._csv.writerow(FACES_COLUMNS)

    def add(
        self,
        frame: np.ndarray,
        time: np.ndarray,
        label: np.ndarray,
        boxes: np.ndarray,
        conf: np.ndarray,
        distance: np.ndarray | None = None,
    ) -> None:
        """Rows of faces (any order within the call; calls in frame order); `distance` NaN
        where a face was not described."""
        ids = np.array([face_id(name) for name in label], dtype=np.int64)
        for i in np.lexsort((ids, frame)):
            self._csv.writerow(
                [
                    int(frame[i]),
                    f"{time[i]:.6f}",
                    int(ids[i]),
                    *(format_float(v) for v in boxes[i]),
                    format_float(conf[i]),
                    "" if distance is None or np.isnan(distance[i]) else f"{distance[i]:.4f}",
                ]
            )


def _always(options: OutputOptions, is_video: bool) -> bool:
    return True


def _videos_only(options: OutputOptions, is_video: bool) -> bool:
    # Annotations are time series: a still image gets none.
    return is_video


@dataclass(frozen=True)
class Output:
    """One kind of output file: the suffix added to the input's stem, when it is written,
    the writer that writes it (called with the file's path and the WriterContext), and what
    the model family must give for it (None: every family's results have it)."""

    suffix: str
    applies: Callable[[OutputOptions, bool], bool]  # (options, input is a video)
    open: Callable[[Path, WriterContext], ResultWriter]
    needs: str | None = None  # one of registry.RESULT_KINDS


def _dimension(name: str) -> Output:
    writer = partial(DimensionAnnotationWriter, dimension=name)
    return Output(f".{name}.annotation", _videos_only, writer, needs=name)


OUTPUTS: tuple[Output, ...] = (
    Output(".csv", _always, CsvWriter),
    Output(".expression.annotation", _videos_only, ExpressionAnnotationWriter, "expression"),
    *(_dimension(name) for name in DIMENSIONS),
    Output(
        ".landmarks.stream",
        lambda options, is_video: options.landmarks,
        partial(FeatureStreamWriter, feature="landmarks"),
        "landmarks",
    ),
    Output(
        ".embedding.stream",
        lambda options, is_video: options.embeddings,
        partial(FeatureStreamWriter, feature="embedding"),
        "embedding",
    ),
    Output(".stream", lambda options, is_video: options.box_stream, DetectedBoxesWriter),
    Output(
        ".pose.stream",
        lambda options, is_video: options.pose,
        partial(FeatureStreamWriter, feature="pose"),
    ),
)
CSV_OUTPUT, LANDMARKS_OUTPUT, BOX_STREAM_OUTPUT = OUTPUTS[0], OUTPUTS[5], OUTPUTS[7]


def family_outputs(model: ModelFamily) -> list[Output]:
    """The outputs of a family's results: those of OUTPUTS it gives what they need for, and
    one discrete annotation per category (`S.happiness.annotation`)."""
    outputs = [o for o in OUTPUTS if o.needs is None or model.gives(o.needs)]
    for index, name in enumerate(model.categories):
        writer = partial(CategoryAnnotationWriter, index=index)
        outputs.append(Output(f".{category_slug(name)}.annotation", _videos_only, writer))
    return outputs


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
    return [o for o in family_outputs(options.model) if o.applies(options, is_video)]


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
    path: Path,
    options: OutputOptions,
    selection: FrameSelection | None = None,
    asked: dict | None = None,
) -> bool:
    """Whether every output of `path` is there and its summary was written for this very file
    (same name, size and modification time), not for another one of the same stem, for the
    same frames (`selection`) and, given `asked` (analyze.asked_record), by the same model,
    weights and options."""
    planned = planned_outputs(path, options)
    try:
        summary = json.loads(planned[-1].read_text(encoding="utf-8"))
        wanted = selection.as_dict() if selection is not None else None
        if summary.get("input_file") != input_identity(Path(path)):
            return False
        if summary.get("selection") != wanted:
            return False
        if asked is not None and not records_match(summary, asked):
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


def records_match(summary: dict, asked: dict) -> bool:
    """Whether a summary records what `asked` holds (compared as JSON reads it back: tuples
    as lists); its `detector` only in the keys `asked` names."""
    asked = json.loads(json.dumps(_nan_to_none(asked)))
    for key, value in asked.items():
        recorded = summary.get(key)
        if key == "detector" and isinstance(recorded, dict) and isinstance(value, dict):
            recorded = {k: v for k, v in recorded.items() if k in value}
        if recorded != value:
            return False
    return True


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
    """Write a JSON document atomically (NaN becomes null, so any JSON reader accepts it); a
    file name's bytes that are not UTF-8 as JSON escapes (see formats/names.py)."""
    text = json_escaped(json.dumps(_nan_to_none(document), indent=2, ensure_ascii=False))
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
