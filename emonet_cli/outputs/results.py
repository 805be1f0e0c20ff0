"""Per-frame results: what the model chain yields (ResultBatch), the published temporal
smoothing over them, the running summary of a whole input, and the results CSV read back."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet_cli.constants import CLASS_NAMES, EMBEDDING_SIZE, N_LANDMARKS, SMOOTHING_WEIGHTS
from emonet_cli.errors import FormatError
from emonet_cli.models.registry import DEFAULT_FAMILY, ModelFamily, family

SUMMARY_SUFFIX = ".emonet.json"  # S.emonet.json beside S.csv (see writers)
DIMENSIONS = ("valence", "arousal", "dominance")  # in [-1, 1], in every family that gives them
CATEGORY_SEPARATOR = ";"  # between the categories reported in a CSV cell
TEXT_COLUMNS = ("expression_name", "categories")  # the results CSV's columns that are no numbers
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
# Appended after every family's own columns (so that no earlier column moves): what each frame
# is worth (faces.quality): head pose in degrees, face size in pixels, sharpness, usable 0/1.
QUALITY_COLUMNS = ("yaw", "pitch", "roll", "face_size", "sharpness", "usable")


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
    # (n, 17) float32: what a detector kept per frame (detection.postprocess columns); None
    # when the faces came from a box file
    detection: np.ndarray | None = None
    # (n, 4) float64: x1, y1, x2, y2 of each analysed face in frame pixels, NaN without one
    box: np.ndarray | None = None
    person: str | None = None  # whose faces: `face1`...; None for a single-face source
    dominance: np.ndarray | None = None  # (n,) float32 in [-1, 1], of families that give it
    # (n, K) float32 raw scores of a family's categories, and (n, K) bool those above their
    # thresholds (the categories reported); None for families without categories
    categories: np.ndarray | None = None
    category_set: np.ndarray | None = None
    # (n,) float32: the face's descriptor distance to its person where identity described
    # it, NaN elsewhere; None without identity
    identity_distance: np.ndarray | None = None
    # What each frame is worth (faces.quality, faces.pose): (n, 3) float32 yaw, pitch, roll in
    # degrees, NaN where unknown; (n,) float32 face size in pixels and sharpness, NaN without
    # a face; (n,) bool usable. None: not measured (read as unknown and not usable).
    pose: np.ndarray | None = None
    face_size: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    usable: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def quality(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """pose (n, 3), face size, sharpness (n,) and usable (n,) bool, NaN and False where
        not measured."""
        n = len(self)
        nan = np.full(n, np.nan, dtype=np.float32)
        return (
            np.full((n, 3), np.nan, dtype=np.float32) if self.pose is None else self.pose,
            nan if self.face_size is None else self.face_size,
            nan if self.sharpness is None else self.sharpness,
            np.zeros(n, dtype=bool) if self.usable is None else self.usable,
        )

    @classmethod
    def empty(
        cls,
        frame: np.ndarray,
        time: np.ndarray,
        nclass: int,
        person: str | None = None,
        detection: np.ndarray | None = None,
        n_categories: int = 0,
        dominance: bool = False,
    ) -> ResultBatch:
        """Rows without a face for these frames (a person's frames before they appeared);
        `detection` is the 17 values a detector stream holds for each of them; a family with
        `n_categories` categories or `dominance` gets those arrays too."""
        n = len(frame)
        return cls(
            frame=np.asarray(frame, dtype=np.int64),
            time=np.asarray(time, dtype=np.float64),
            face=np.zeros(n, dtype=bool),
            face_conf=np.zeros(n, dtype=np.float32),
            expression=np.full(n, -1, dtype=np.int64),
            probabilities=np.full((n, nclass), np.nan, dtype=np.float32),
            valence=np.full(n, np.nan, dtype=np.float32),
            arousal=np.full(n, np.nan, dtype=np.float32),
            landmarks=np.full((n, N_LANDMARKS, 2), np.nan, dtype=np.float32),
            embedding=np.full((n, EMBEDDING_SIZE), np.nan, dtype=np.float32),
            detection=None if detection is None else np.repeat(detection[None], n, axis=0),
            box=np.full((n, 4), np.nan),
            person=person,
            dominance=np.full(n, np.nan, dtype=np.float32) if dominance else None,
            categories=np.full((n, n_categories), np.nan, dtype=np.float32)
            if n_categories
            else None,
            category_set=np.zeros((n, n_categories), dtype=bool) if n_categories else None,
            pose=np.full((n, 3), np.nan, dtype=np.float32),
            face_size=np.full(n, np.nan, dtype=np.float32),
            sharpness=np.full(n, np.nan, dtype=np.float32),
            usable=np.zeros(n, dtype=bool),
        )

    @property
    def expression_conf(self) -> np.ndarray:
        """The probability of each frame's class; 0 without a face (NOVA's garbage)."""
        best = self.probabilities.max(axis=1, initial=0.0)
        return np.where(self.face, best, 0.0).astype(np.float32)


def class_names_of(classes: int | Sequence[str]) -> tuple[str, ...]:
    """Class names given as themselves, or as the class count of the published weights."""
    return CLASS_NAMES[classes] if isinstance(classes, int) else tuple(classes)


def category_slug(name: str) -> str:
    """A category's name as file names and columns spell it: `Doubt/Confusion` ->
    `doubt_confusion`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def native_columns(model: ModelFamily) -> list[str]:
    """The columns of valence, arousal (and dominance) on a family's own scale, e.g.
    `valence_1_10` for EMOTIC's 1 to 10; none for a family scored on [-1, 1] only."""
    if model.native_scale is None:
        return []
    low, high = model.native_scale
    return [f"{d}_{low:g}_{high:g}" for d in DIMENSIONS if d in model.outputs]


def csv_columns(classes: int | Sequence[str], model: ModelFamily | None = None) -> list[str]:
    """The results CSV's columns for these class names (or the published ones of nclass) and
    the outputs of `model` (default: EmoNet's)."""
    model = model or family(DEFAULT_FAMILY)
    names = class_names_of(classes) if model.gives("expression") else ()
    columns = ["frame", "time", "face", "face_conf"]
    if model.gives("expression"):
        columns += ["expression", "expression_name", "expression_conf"]
    columns += [d for d in DIMENSIONS if model.gives(d)]
    columns += native_columns(model)
    if model.categories:
        columns += ["categories", *(f"score_{category_slug(c)}" for c in model.categories)]
    return [*columns, *(f"prob_{name.lower()}" for name in names), *QUALITY_COLUMNS]


class TemporalSmoother:
    """Causal weighted average of the current and previous 4 frames' raw outputs (the published
    weights), renormalised over the frames in that window that had a face, so that the start of
    a clip or the frames after a gap are not damped. Works in frame order across batches."""

    def __init__(self, weights=SMOOTHING_WEIGHTS):
        self.weights = np.asarray(weights, dtype=np.float64)[::-1]  # newest first
        self.history_values: np.ndarray | None = None
        self.history_face = np.zeros(0, dtype=bool)

    def __call__(self, values: np.ndarray, face: np.ndarray) -> np.ndarray:
        """values: (n, d) raw outputs of n consecutive frames (ignored where face is False)."""
        span = len(self.weights)
        if self.history_values is None:
            self.history_values = np.zeros((0, values.shape[1]))
        all_values = np.concatenate([self.history_values, np.where(face[:, None], values, 0.0)])
        all_face = np.concatenate([self.history_face, face])
        offset = len(self.history_face)
        total = np.zeros((len(values), values.shape[1]))
        norm = np.zeros(len(values))
        rows = np.arange(len(values)) + offset
        for lag, weight in enumerate(self.weights):
            source = rows - lag
            valid = source >= 0
            src = np.where(valid, source, 0)
            use = valid & all_face[src]
            total += np.where(use[:, None], weight * all_values[src], 0.0)
            norm += np.where(use, weight, 0.0)
        self.history_values = all_values[-(span - 1) :]
        self.history_face = all_face[-(span - 1) :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(face[:, None], total / norm[:, None], np.nan)


class Summary:
    """Running totals of an input's results for its summary JSON, so that no per-frame result
    is kept in memory."""

    def __init__(self, classes: int | Sequence[str], categories: Sequence[str] = ()):
        self.class_names = class_names_of(classes)
        self.categories = tuple(categories)
        self.frames = 0
        self.faces = 0
        self.sums = dict.fromkeys(DIMENSIONS, 0.0)
        self.dominance = False  # seen: the family gives dominance
        self.histogram = np.zeros(len(self.class_names), dtype=np.int64)
        self.category_frames = np.zeros(len(self.categories), dtype=np.int64)
        self.usable = 0  # frames whose face is usable (faces.quality)
        self.usable_sums = dict.fromkeys(DIMENSIONS, 0.0)

    def add(self, batch: ResultBatch) -> None:
        self.frames += len(batch)
        self.faces += int(batch.face.sum())
        usable = batch.quality()[3] & batch.face
        self.usable += int(usable.sum())
        for name in DIMENSIONS:
            values = getattr(batch, name)
            if values is not None:
                self.sums[name] += float(values[batch.face].astype(np.float64).sum())
                self.usable_sums[name] += float(values[usable].astype(np.float64).sum())
        self.dominance = self.dominance or batch.dominance is not None
        if len(self.class_names):
            counts = np.bincount(batch.expression[batch.face], minlength=len(self.histogram))
            self.histogram += counts
        if batch.category_set is not None:
            self.category_frames += batch.category_set[batch.face].sum(axis=0)

    def totals(self) -> dict:
        """The summary JSON's part about the results."""
        dimensions = DIMENSIONS if self.dominance else DIMENSIONS[:2]
        document = {"frames": self.frames, "frames_with_face": self.faces}
        for name in dimensions:
            document[f"mean_{name}"] = self.sums[name] / self.faces if self.faces else math.nan
        # Beside the means over every face, those over the usable frames alone.
        document["usable_frames"] = self.usable
        document["usable_share"] = self.usable / self.frames if self.frames else math.nan
        for name in dimensions:
            usable = self.usable_sums[name] / self.usable if self.usable else math.nan
            document[f"mean_{name}_usable"] = usable
        if len(self.class_names):
            document["expression_histogram"] = {
                name: int(count) for name, count in zip(self.class_names, self.histogram)
            }
        if self.categories:  # frames in which each category is reported
            document["category_frames"] = {
                name: int(count) for name, count in zip(self.categories, self.category_frames)
            }
        return document


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
            if name in TEXT_COLUMNS
            else np.array([float(v) for v in values], dtype=np.float64)
        )
    return columns


def probability_classes(
    columns: dict[str, np.ndarray], summary: Path | None = None
) -> tuple[str, ...] | None:
    """The class names of a results CSV's prob_<name> columns, in column order: the published
    names where the columns are theirs, else those of the `summary` JSON (S.emonet.json) when
    they are the columns', else the names as written in expression_name where a frame shows
    them, else the columns' (lowercase) names. None for fewer than 2 columns."""
    lowercase = [name[len("prob_") :] for name in columns if name.startswith("prob_")]
    if len(lowercase) < 2:
        return None
    for names in CLASS_NAMES.values():
        if sorted(lowercase) == sorted(name.lower() for name in names):
            return names
    try:
        names = json.loads(summary.read_text(encoding="utf-8"))["classes"]
        if [str(name).lower() for name in names] == lowercase:
            return tuple(str(name) for name in names)
    except (AttributeError, OSError, ValueError, KeyError, TypeError):
        pass  # no summary beside the CSV, or not the one of these results
    written = {str(name).lower(): str(name) for name in columns["expression_name"] if name}
    return tuple(written.get(name, name) for name in lowercase)


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
    usable: np.ndarray | None = None  # (n,) bool; None: results written before the column

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
    if missing and "categories" in columns:
        raise FormatError(
            f"{path}: results of a model without expressions (EMOTIC's categories): "
            "render and plot draw expressions"
        )
    if missing:
        raise FormatError(f"{path}: not an emonet results CSV (no column {', '.join(missing)})")
    names = probability_classes(columns, path.with_suffix(SUMMARY_SUFFIX))
    if names is None:
        found = [name for name in columns if name.startswith("prob_")]
        raise FormatError(
            f"{path}: the prob_ columns name no model's classes: at least 2 are needed, one "
            f"per class (found {', '.join(found) or 'none'})"
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
        usable=face & (columns["usable"] == 1) if "usable" in columns else None,
    )
