"""One results CSV (`S.csv` of `emonet analyze`) read chunk by chunk into the figures of its row
in `index.csv` and a small picture of it (a binned timeline and a sample of circumplex points):
nothing per frame is kept, so a report's memory does not grow with the recordings' length."""

from __future__ import annotations

import base64
import csv
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.outputs.results import CATEGORY_SEPARATOR, DIMENSIONS

CHUNK_ROWS = 8192
TIMELINE_BINS = 200  # at most, in the picture of one CSV
CIRCUMPLEX_POINTS = 160  # at most
NO_VALUE = 255  # in the picture's bytes: no face in the bin, no label
VALUE_STEPS = 100  # a value in [-1, 1] is stored as round((v + 1) * 100), 0 to 200


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of a stream of values, merged chunk by chunk
    (Chan, Golub and LeVeque's update), so that mean and standard deviation are exact to
    float64 without keeping the values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if len(values):
            mean = float(values.mean())
            self.merge(Moments(len(values), mean, float(((values - mean) ** 2).sum())))

    def merge(self, other: Moments) -> None:
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total

    @property
    def average(self) -> float:
        return self.mean if self.count else math.nan

    @property
    def std(self) -> float:
        """The sample standard deviation (n - 1, as R's sd and pandas' std); NaN below 2."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else math.nan


@dataclass
class Figures:
    """What index.csv says of one CSV (or of several people's, pooled): frames, frames with a
    face, valence/arousal/dominance over the frames with a face, and in how many of those
    each label (expression, or EMOTIC category) was given. Pooled over several people, the
    means and shares are over every person's rows with a face (`faces`) and
    `frames_with_face` counts the frames with at least one face."""

    labels: tuple[str, ...]
    frames: int = 0
    faces: int = 0  # rows with a face
    usable: int | None = None  # rows whose face is usable; None: a CSV without the column
    rows: int = 0  # CSV rows read (pooled: of every person's CSV)
    pooled_face_frames: int | None = None  # pooled: frames with at least one face
    dimensions: dict[str, Moments] = field(default_factory=dict)
    label_frames: np.ndarray | None = None

    def __post_init__(self):
        if self.label_frames is None:
            self.label_frames = np.zeros(len(self.labels), dtype=np.int64)

    @property
    def frames_with_face(self) -> int:
        return self.faces if self.pooled_face_frames is None else self.pooled_face_frames

    def merge(self, other: Figures) -> None:
        self.frames = max(self.frames, other.frames)  # people's CSVs cover the same frames
        self.faces += other.faces
        self.rows += other.rows
        if other.usable is not None:
            self.usable = (self.usable or 0) + other.usable
        for name, moments in other.dimensions.items():
            self.dimensions.setdefault(name, Moments()).merge(moments)
        if other.labels == self.labels:
            self.label_frames += other.label_frames

    @property
    def usable_share(self) -> float | None:
        """The share of the frames whose face is usable (pooled over people: of every
        person's rows); None where the CSVs have no usable column."""
        if self.usable is None or not self.rows:
            return None
        return self.usable / self.rows

    def shares(self) -> dict[str, float]:
        """Each label's share of the frames with a face."""
        if not self.faces:
            return {name: math.nan for name in self.labels}
        return {name: int(n) / self.faces for name, n in zip(self.labels, self.label_frames)}


class Picture:
    """A timeline of at most TIMELINE_BINS bins (face share, mean valence, arousal, dominance
    and most frequent label of each) and at most CIRCUMPLEX_POINTS sampled faces (valence,
    arousal, label), built in one pass: when the bins run out, neighbours are merged and each
    bin covers twice as many rows; likewise every other sampled point is dropped."""

    def __init__(self, n_labels: int):
        self.capacity = 2 * TIMELINE_BINS
        self.width = 1  # rows per bin
        self.rows = 0
        self.count = np.zeros(self.capacity)
        self.faces = np.zeros(self.capacity)
        self.sums = np.zeros((self.capacity, len(DIMENSIONS)))
        self.hits = np.zeros((self.capacity, n_labels))
        self.first_time = self.last_time = math.nan
        self.step = 1  # every step-th face is a point
        self.faces_seen = 0
        self.points = np.zeros((0, 4))  # face number, valence, arousal, label

    def add(self, time: np.ndarray, face: np.ndarray, values: np.ndarray, hits: np.ndarray):
        """Rows in order: time, face (bool), values (m, 3) NaN where absent, hits (m, labels)."""
        m = len(time)
        if m == 0:
            return
        if self.rows == 0:
            self.first_time = float(time[0])
        self.last_time = float(time[-1])
        index = (self.rows + np.arange(m)) // self.width
        while index[-1] >= self.capacity:
            self._merge_neighbours()
            index = (self.rows + np.arange(m)) // self.width
        self.rows += m
        self.count += np.bincount(index, minlength=self.capacity)
        self.faces += np.bincount(index, weights=face.astype(float), minlength=self.capacity)
        counted = np.where(face[:, None] & np.isfinite(values), values, 0.0)
        for j in range(values.shape[1]):
            self.sums[:, j] += np.bincount(index, counted[:, j], minlength=self.capacity)
        for k in range(hits.shape[1]):
            weights = (hits[:, k] & face).astype(float)
            self.hits[:, k] += np.bincount(index, weights, minlength=self.capacity)
        self._sample(face, values, hits)

    def _merge_neighbours(self) -> None:
        half = self.capacity // 2
        for name in ("count", "faces", "sums", "hits"):
            array = getattr(self, name)
            merged = np.zeros_like(array)
            merged[:half] = array[0::2] + array[1::2]
            setattr(self, name, merged)
        self.width *= 2

    def _sample(self, face: np.ndarray, values: np.ndarray, hits: np.ndarray) -> None:
        rows = np.flatnonzero(face)
        number = self.faces_seen + np.arange(len(rows))
        self.faces_seen += len(rows)
        kept = number % self.step == 0
        rows, number = rows[kept], number[kept]
        labels = np.where(hits[rows].any(axis=1), hits[rows].argmax(axis=1), -1)
        new = np.column_stack([number, values[rows, 0], values[rows, 1], labels])
        self.points = np.concatenate([self.points, new])
        while len(self.points) > 2 * CIRCUMPLEX_POINTS:
            self._thin()

    def _thin(self) -> None:
        self.step *= 2
        self.points = self.points[self.points[:, 0] % self.step == 0]

    def encoded(self) -> dict:
        """The picture as the report page draws it: bytes of 5 per bin (face share 0-255,
        valence, arousal, dominance 0-200 or 255, label or 255) and 3 per point, base64."""
        used = -(-self.rows // self.width)
        if used > TIMELINE_BINS:
            self._merge_neighbours()
            used = -(-self.rows // self.width)
        if len(self.points) > CIRCUMPLEX_POINTS:
            self._thin()
        count, faces = self.count[:used], self.faces[:used]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums[:used] / faces[:, None]
        bins = np.full((used, 5), NO_VALUE, dtype=np.uint8)
        bins[:, 0] = np.round(255 * faces / np.maximum(count, 1))
        bins[:, 1:4] = _as_bytes(np.where(faces[:, None] > 0, means, np.nan))
        hits = self.hits[:used]
        bins[:, 4] = np.where(hits.max(axis=1, initial=0) > 0, hits.argmax(axis=1), NO_VALUE)
        points = np.full((len(self.points), 3), NO_VALUE, dtype=np.uint8)
        points[:, 0:2] = _as_bytes(self.points[:, 1:3])
        points[:, 2] = np.where(self.points[:, 3] >= 0, self.points[:, 3], NO_VALUE)
        return {
            "rows": self.rows,
            "t0": _rounded(self.first_time),
            "t1": _rounded(self.last_time),
            "bins": base64.b64encode(bins.tobytes()).decode("ascii"),
            "points": base64.b64encode(points.tobytes()).decode("ascii"),
        }


def _as_bytes(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] (clipped) as 0 to 200; NaN as NO_VALUE."""
    steps = np.round((np.clip(values, -1.0, 1.0) + 1.0) * VALUE_STEPS)
    return np.where(np.isfinite(values), steps, NO_VALUE).astype(np.uint8)


def _rounded(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


@dataclass
class ReadCsv:
    figures: Figures
    picture: dict  # Picture.encoded()


def read_results_figures(path: Path, labels: Sequence[str], categories: bool = False) -> ReadCsv:
    """Stream `path` (a results CSV) into its Figures and picture. `labels` are the class names
    its `expression` ids index or, with `categories`, the categories its `categories` column
    names. FormatError (one line, naming the file) when it is no results CSV."""
    labels = tuple(labels)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return _read(csv.reader(f), path, labels, categories)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error.strerror})") from None
    except csv.Error as error:
        raise FormatError(f"{path}: not a results CSV ({error})") from None


def _read(reader, path: Path, labels: tuple[str, ...], categories: bool) -> ReadCsv:
    header = next(reader, None)
    if not header:
        raise FormatError(f"{path}: empty, not a results CSV")
    column = {name: j for j, name in enumerate(header)}
    label_column = "categories" if categories else "expression"
    missing = [n for n in ("time", "face", "valence", "arousal") if n not in column]
    if labels and label_column not in column:
        missing.append(label_column)
    if missing:
        raise FormatError(f"{path}: not a results CSV (no column {', '.join(missing)})")
    dimensions = [name for name in DIMENSIONS if name in column]
    figures = Figures(labels, dimensions={name: Moments() for name in dimensions})
    if "usable" in column:
        figures.usable = 0
    picture = Picture(len(labels))
    category_index = {name: k for k, name in enumerate(labels)}
    done = 0
    while True:
        rows = list(itertools.islice(reader, CHUNK_ROWS))
        if not rows:
            break
        try:
            time = _numbers(rows, column["time"])
            face = _numbers(rows, column["face"]) == 1
            usable = _numbers(rows, column["usable"]) == 1 if "usable" in column else None
            values = np.full((len(rows), len(DIMENSIONS)), np.nan)
            for j, name in enumerate(DIMENSIONS):
                if name in column:
                    values[:, j] = _numbers(rows, column[name])
            hits = np.zeros((len(rows), len(labels)), dtype=bool)
            if labels and categories:
                cells = [row[column[label_column]] for row in rows]
                for i, cell in enumerate(cells):
                    for name in cell.split(CATEGORY_SEPARATOR) if cell else ():
                        hits[i, category_index[name]] = True
            elif labels:
                ids = _numbers(rows, column[label_column]).astype(np.int64)
                bad = np.flatnonzero(face & ((ids < 0) | (ids >= len(labels))))
                if bad.size:
                    raise FormatError(
                        f"{path}: row {done + bad[0] + 1} has no valid expression id for its face"
                    )
                hits[np.flatnonzero(face), ids[face]] = True
        except IndexError:
            message = f"{path}: not a results CSV (a row is shorter than the header)"
            raise FormatError(message) from None
        except ValueError as error:
            raise FormatError(f"{path}: not a results CSV ({error})") from None
        except KeyError as error:
            raise FormatError(f"{path}: unknown category {error} in row") from None
        figures.frames += len(rows)
        figures.rows += len(rows)
        figures.faces += int(face.sum())
        if usable is not None:
            figures.usable += int((face & usable).sum())
        for j, name in enumerate(DIMENSIONS):
            if name in figures.dimensions:
                figures.dimensions[name].add(values[face, j])
        figures.label_frames += hits[face].sum(axis=0)
        picture.add(time, face, values, hits)
        done += len(rows)
    return ReadCsv(figures, picture.encoded())


def _numbers(rows: list[list[str]], j: int) -> np.ndarray:
    return np.array([row[j] for row in rows], dtype=np.float64)
