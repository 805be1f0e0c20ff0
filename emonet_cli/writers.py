"""Output files of an analysis, written batch by batch as results arrive.

Each writer streams into temporary files and renames them only in `close()`, so a run that is
interrupted leaves no partial result; `abort()` removes what was written.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from emonet_cli.annotations import (
    ContinuousAnnotationWriter,
    ContinuousScheme,
    DiscreteAnnotationWriter,
    DiscreteScheme,
)
from emonet_cli.constants import CLASS_COLORS, CLASS_NAMES, EMBEDDING_SIZE, N_LANDMARKS
from emonet_cli.errors import FormatError
from emonet_cli.fileio import atomic_open, temporary_sibling
from emonet_cli.streams import StreamWriter, format_float

CSV_BASE_COLUMNS = (
    "frame",
    "time",
    "face",
    "face_conf",
    "expression",
    "expression_name",
    "expression_conf",
    "valence",
    "arousal",
)


@dataclass
class ResultBatch:
    """Per-frame results for consecutive frames; rows without a face hold NaN / -1 / 0."""

    frame: np.ndarray  # (n,) int
    time: np.ndarray  # (n,) float64 seconds
    face: np.ndarray  # (n,) bool: a face was analysed
    face_conf: np.ndarray  # (n,) float32: the box confidence, 0 without a face
    expression: np.ndarray  # (n,) int: class id, -1 without a face
    probabilities: np.ndarray  # (n, nclass) float32
    valence: np.ndarray  # (n,) float32
    arousal: np.ndarray  # (n,) float32
    landmarks: np.ndarray  # (n, 68, 2) float32: x, y in frame pixels
    embedding: np.ndarray  # (n, 256) float32

    def __len__(self) -> int:
        return len(self.frame)


class ResultWriter(Protocol):
    paths: list[Path]

    def add(self, batch: ResultBatch) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def csv_columns(nclass: int) -> list[str]:
    return [*CSV_BASE_COLUMNS, *(f"prob_{name.lower()}" for name in CLASS_NAMES[nclass])]


class CsvWriter:
    """`S.csv`: one row per frame, the columns of `csv_columns`."""

    def __init__(self, path: Path, nclass: int):
        self.path = path
        self.paths = [path]
        self.names = CLASS_NAMES[nclass]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_sibling(path)
        self._file: IO[str] = open(self._tmp, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(csv_columns(nclass))

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

    def close(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class ExpressionAnnotationWriter:
    """`S.expression.annotation`: a discrete NOVA annotation, one segment per frame from its
    time to the next frame's, or per run of equal labels with `merge`. No-face frames are
    garbage segments (id -1, confidence 0)."""

    def __init__(self, path: Path, nclass: int, fps: float, merge: bool, ftype: str, meta: dict):
        names = list(CLASS_NAMES[nclass])
        scheme = DiscreteScheme("emotion", names, [CLASS_COLORS[n] for n in names])
        self._writer = DiscreteAnnotationWriter(path, scheme, ftype=ftype, **meta)
        self.paths = self._writer.paths
        self.frame_duration = 1.0 / fps
        self.merge = merge
        self._open: list | None = None  # [start, label, conf sum, count] of the pending segment

    def _emit(self, end: float) -> None:
        start, label, conf_sum, count = self._open
        conf = conf_sum / count if label >= 0 else 0.0
        self._writer.append(np.array([start]), np.array([end]), np.array([label]), np.array([conf]))

    def add(self, batch: ResultBatch) -> None:
        confidences = np.where(batch.face, batch.probabilities.max(axis=1, initial=0.0), 0.0)
        for time, label, conf in zip(batch.time, batch.expression, confidences):
            label = int(label)
            if self._open is not None:
                if self.merge and self._open[1] == label:
                    self._open[2] += float(conf)
                    self._open[3] += 1
                    continue
                self._emit(float(time))
            self._open = [float(time), label, float(conf), 1]
        self._last_time = float(batch.time[-1]) if len(batch) else None

    def close(self) -> None:
        if self._open is not None:
            self._emit(round(self._last_time + self.frame_duration, 6))
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


class DimensionAnnotationWriter:
    """`S.valence.annotation` or `S.arousal.annotation`: continuous, one sample per frame at the
    video's frame rate in [-1, 1]; no-face samples are NaN with confidence 0."""

    def __init__(self, path: Path, dimension: str, fps: float, ftype: str, meta: dict):
        self.dimension = dimension
        scheme = ContinuousScheme(dimension, sr=fps, min=-1.0, max=1.0)
        self._writer = ContinuousAnnotationWriter(path, scheme, ftype=ftype, **meta)
        self.paths = self._writer.paths

    def add(self, batch: ResultBatch) -> None:
        score = getattr(batch, self.dimension)
        self._writer.append(score, batch.face_conf)

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


class FeatureStreamWriter:
    """`S.landmarks.stream` (x, y of the 68 landmarks in frame pixels) or `S.embedding.stream`
    (the 256 pooled features): an SSI stream of float32, NaN rows without a face."""

    def __init__(self, path: Path, feature: str, sr: float, meta: dict[str, str]):
        self.feature = feature
        dim = 2 * N_LANDMARKS if feature == "landmarks" else EMBEDDING_SIZE
        self._writer = StreamWriter(path, dim=dim, sr=sr, meta=meta)
        self.paths = self._writer.paths

    def add(self, batch: ResultBatch) -> None:
        values = getattr(batch, self.feature)
        self._writer.append(values.reshape(len(batch), -1))

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


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


def read_results_csv(path: Path) -> dict[str, np.ndarray]:
    """The columns of an `S.csv` as arrays (numbers as float, expression_name as str)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    columns = {}
    for j, name in enumerate(header):
        values = [row[j] for row in body]
        columns[name] = (
            np.array(values)
            if name == "expression_name"
            else np.array([float(v) for v in values], dtype=np.float64)
        )
    return columns


@dataclass
class Results:
    """The per-frame results of one `S.csv`; rows without a face hold NaN / -1."""

    path: Path
    class_names: tuple[str, ...]
    time: np.ndarray  # (n,) seconds
    face: np.ndarray  # (n,) bool
    expression: np.ndarray  # (n,) int, -1 without a face
    probabilities: np.ndarray  # (n, nclass)
    valence: np.ndarray  # (n,)
    arousal: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.time)

    def frame_edges(self) -> np.ndarray:
        """n + 1 times: frame i lasts from edge i to edge i + 1 (the last one a typical frame)."""
        step = float(np.median(np.diff(self.time))) if len(self.time) > 1 else 1.0
        return np.append(self.time, self.time[-1] + step)


def read_results(path: str | Path) -> Results:
    """Read and check an `S.csv` written by `emonet analyze` (also used by `emonet render`)."""
    path = Path(path)
    try:
        columns = read_results_csv(path)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error.strerror})") from None
    except (ValueError, IndexError) as error:
        detail = str(error) if isinstance(error, ValueError) else "a row is shorter than the header"
        raise FormatError(f"{path}: not an emonet results CSV ({detail})") from None
    missing = [name for name in CSV_BASE_COLUMNS if name not in columns]
    if missing:
        raise FormatError(f"{path}: not an emonet results CSV (no column {', '.join(missing)})")
    probability_columns = sorted(name for name in columns if name.startswith("prob_"))
    for names in CLASS_NAMES.values():
        if probability_columns == sorted(f"prob_{name.lower()}" for name in names):
            break
    else:
        raise FormatError(
            f"{path}: the prob_ columns match neither the 5- nor the 8-class model "
            f"(found {', '.join(probability_columns) or 'none'})"
        )
    if len(columns["frame"]) == 0:
        raise FormatError(f"{path}: no frames")
    face = columns["face"] == 1
    expression = columns["expression"].astype(np.int64)
    bad = np.flatnonzero(face & ~((expression >= 0) & (expression < len(names))))
    if bad.size:
        raise FormatError(f"{path}: row {bad[0] + 1} has no valid expression id for its face")
    return Results(
        path=path,
        class_names=names,
        time=columns["time"],
        face=face,
        expression=np.where(face, expression, -1),
        probabilities=np.stack([columns[f"prob_{name.lower()}"] for name in names], axis=1),
        valence=np.where(face, columns["valence"], np.nan),
        arousal=np.where(face, columns["arousal"], np.nan),
    )
