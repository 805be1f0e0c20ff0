"""`emonet evaluate`: score a model on labelled faces the way the EmoNet paper scores AffectNet.

Data flow: label file -> rows -> class mapping and cleaning -> image -> aligned crop (and its
mirror) -> batched model -> metrics -> table and JSON report.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from emonet_cli import metrics
from emonet_cli.align import affine_from_box, affine_full_frame, crop_face
from emonet_cli.boxes import parse_finite
from emonet_cli.errors import EmonetError, FormatError
from emonet_cli.fileio import atomic_open
from emonet_cli.inference import Predictor

log = logging.getLogger("emonet")

AFFECTNET_EXPRESSIONS = (
    "Neutral",
    "Happy",
    "Sad",
    "Surprise",
    "Fear",
    "Disgust",
    "Anger",
    "Contempt",
    "None",
    "Uncertain",
    "No-Face",
)
# AffectNet ids scored by each model, in the order of its classes (the published loader).
SCORED_EXPRESSIONS = {8: (0, 1, 2, 3, 4, 5, 6, 7), 5: (0, 1, 2, 3, 6)}
MISSING_AFFECT = -2.0  # AffectNet's valence / arousal for faces without them
N_LANDMARK_VALUES = 136  # 68 (x, y) pairs

AFFECTNET_COLUMNS = (
    "subdirectory_filepath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
SIMPLE_COLUMNS = ("image", "expression", "valence", "arousal")
BOX_COLUMNS = ("x1", "y1", "x2", "y2")

# The paper's results on the cleaned AffectNet test set, shown next to the user's.
PUBLISHED = {
    8: {
        "expression": {"acc": 0.75},
        "valence": {"ccc": 0.82, "pcc": 0.82, "rmse": 0.29, "sagr": 0.84},
        "arousal": {"ccc": 0.75, "pcc": 0.75, "rmse": 0.27, "sagr": 0.80},
    },
    5: {
        "expression": {"acc": 0.82},
        "valence": {"ccc": 0.90, "pcc": 0.90, "rmse": 0.24, "sagr": 0.85},
        "arousal": {"ccc": 0.80, "pcc": 0.80, "rmse": 0.24, "sagr": 0.79},
    },
}
FIVE_CLASS_NOTE = (
    "class 4 of the 5-class model is scored against AffectNet's Anger (id 6), as in the "
    "published loader, although the model's class list calls it Fear"
)

SKIP_EXPRESSION = "expression_not_scored"
SKIP_MISSING_AFFECT = "missing_valence_arousal"
SKIP_CLEANING = "cleaning"
SKIP_UNREADABLE = "unreadable_image"
SKIP_REASONS = (SKIP_EXPRESSION, SKIP_MISSING_AFFECT, SKIP_CLEANING, SKIP_UNREADABLE)


# --- label files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    """One labelled face. valence / arousal are None where the label file says -2 (missing);
    box is (x1, y1, x2, y2) in image pixels, or None for an image that is already a face crop."""

    line: int
    image: str
    expression: int  # AffectNet id, 0-10
    valence: float | None
    arousal: float | None
    box: tuple[float, float, float, float] | None = None


def read_labels(path: str | os.PathLike) -> list[LabelRow]:
    """Every row of an AffectNet CSV or of a simple `image,expression,valence,arousal[,x1,y1,
    x2,y2]` file. A header row is optional: without one, 9 columns mean AffectNet's layout and
    4 or 8 the simple one. Raises FormatError naming the file and line of the first bad row."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(parse_label_rows(csv.reader(f), path))
    except OSError as exc:
        raise FormatError(f"cannot read label file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path} is not a UTF-8 text file") from None
    except csv.Error as exc:
        raise FormatError(f"{path} is not a readable CSV file: {exc}") from None


def parse_label_rows(reader, path: Path) -> Iterator[LabelRow]:
    parse_row = None
    width = 0
    for fields in reader:
        if not any(field.strip() for field in fields):
            continue
        where = f"{path}, line {reader.line_num}"
        if parse_row is None:
            parse_row, width, is_header = row_parser(fields, where)
            if is_header:
                continue
        if len(fields) != width:
            raise FormatError(f"{where}: expected {width} columns, found {len(fields)}")
        yield parse_row(fields, reader.line_num, where)


def row_parser(first: list[str], where: str):
    """(parser, column count, whether `first` is a header) for the layout `first` reveals."""
    names = [name.strip().lower() for name in first]
    if "expression" not in names:
        if len(first) == len(AFFECTNET_COLUMNS):
            return affectnet_parser(list(AFFECTNET_COLUMNS)), len(first), False
        if len(first) in (len(SIMPLE_COLUMNS), len(SIMPLE_COLUMNS) + len(BOX_COLUMNS)):
            names = list(SIMPLE_COLUMNS + BOX_COLUMNS)[: len(first)]
            return simple_parser(names), len(first), False
        raise FormatError(
            f"{where}: without a header row, expected 9 columns (AffectNet: "
            f"{','.join(AFFECTNET_COLUMNS)}) or 4 or 8 (image,expression,valence,arousal"
            f"[,x1,y1,x2,y2]), found {len(first)}"
        )
    if AFFECTNET_COLUMNS[0] in names:
        required, parser = AFFECTNET_COLUMNS, affectnet_parser
    else:
        required, parser = SIMPLE_COLUMNS, simple_parser
    missing = [name for name in required if name not in names]
    if parser is simple_parser:
        present_box = [name for name in BOX_COLUMNS if name in names]
        if present_box and len(present_box) != len(BOX_COLUMNS):
            missing += [name for name in BOX_COLUMNS if name not in names]
    duplicated = sorted({name for name in names if names.count(name) > 1 and name})
    if missing or duplicated:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"repeated {', '.join(duplicated)}"] if duplicated else []
        raise FormatError(f"{where}: header row has {'; '.join(problems)}")
    return parser(names), len(first), True


def affectnet_parser(names: list[str]):
    column = {name: names.index(name) for name in AFFECTNET_COLUMNS}

    def parse(fields: list[str], line: int, where: str) -> LabelRow:
        landmarks = fields[column["facial_landmarks"]].strip()
        if landmarks:
            box = landmark_box(landmarks, where)
        else:
            rect = [fields[column[name]] for name in AFFECTNET_COLUMNS[1:5]]
            box = None
            if any(value.strip() for value in rect):
                x, y, width, height = (
                    parse_finite(value, where, "face rectangle") for value in rect
                )
                box = checked_box((x, y, x + width, y + height), where)
        return LabelRow(
            line=line,
            image=image_name(fields[column["subdirectory_filepath"]], where),
            expression=expression_id(fields[column["expression"]], where),
            valence=affect_value(fields[column["valence"]], "valence", where),
            arousal=affect_value(fields[column["arousal"]], "arousal", where),
            box=box,
        )

    return parse


def simple_parser(names: list[str]):
    column = {name: names.index(name) for name in SIMPLE_COLUMNS + BOX_COLUMNS if name in names}

    def parse(fields: list[str], line: int, where: str) -> LabelRow:
        corners = [fields[column[name]].strip() for name in BOX_COLUMNS if name in column]
        box = None
        if any(corners):
            if not all(corners):
                raise FormatError(f"{where}: give all of x1,y1,x2,y2 or none of them")
            box = checked_box(tuple(parse_finite(value, where, "box") for value in corners), where)
        return LabelRow(
            line=line,
            image=image_name(fields[column["image"]], where),
            expression=expression_id(fields[column["expression"]], where),
            valence=affect_value(fields[column["valence"]], "valence", where),
            arousal=affect_value(fields[column["arousal"]], "arousal", where),
            box=box,
        )

    return parse


def image_name(text: str, where: str) -> str:
    name = text.strip()
    if not name:
        raise FormatError(f"{where}: the image path is empty")
    return name


def expression_id(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < len(AFFECTNET_EXPRESSIONS):
        raise FormatError(
            f"{where}: expression {text.strip()!r} is not an AffectNet id "
            f"(0-{len(AFFECTNET_EXPRESSIONS) - 1})"
        )
    return value


def affect_value(text: str, what: str, where: str) -> float | None:
    value = parse_finite(text, where, what)
    if value == MISSING_AFFECT:
        return None
    if not -1.0 <= value <= 1.0:
        raise FormatError(f"{where}: {what} {value:g} is outside [-1, 1] (and not -2, missing)")
    return value


def landmark_box(text: str, where: str) -> tuple[float, float, float, float]:
    values = [parse_finite(value, where, "landmark") for value in text.split(";")]
    if len(values) != N_LANDMARK_VALUES:
        raise FormatError(
            f"{where}: facial_landmarks has {len(values)} numbers, expected "
            f"{N_LANDMARK_VALUES} (x1;y1;...;x68;y68)"
        )
    points = np.asarray(values).reshape(-1, 2)
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return checked_box((float(x1), float(y1), float(x2), float(y2)), where)


def checked_box(box: tuple[float, ...], where: str) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise FormatError(f"{where}: face box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is empty")
    return (x1, y1, x2, y2)


# --- class mapping and cleaning -----------------------------------------------------------------


def class_index(expression: int, nclass: int) -> int | None:
    """The model class an AffectNet id is scored as, or None if the model does not score it.
    The 5-class model keeps neutral, happy, sad, surprise and anger, anger becoming class 4."""
    scored = SCORED_EXPRESSIONS[nclass]
    return scored.index(expression) if expression in scored else None


def class_names(nclass: int) -> list[str]:
    """The AffectNet name of the label each model class is scored against."""
    return [AFFECTNET_EXPRESSIONS[expression] for expression in SCORED_EXPRESSIONS[nclass]]


def fails_cleaning(expression: int, valence: float, arousal: float) -> bool:
    """The published automatic cleaning: drops faces whose valence and arousal contradict
    their expression label, or are too weak for it."""
    intensity = math.sqrt(valence**2 + arousal**2)
    if expression == 0:  # neutral
        return intensity >= 0.2
    if expression == 1:  # happy
        return valence <= 0 or intensity <= 0.2
    if expression == 2:  # sad
        return valence >= 0 or intensity <= 0.2
    if expression == 3:  # surprise
        return arousal <= 0 or intensity <= 0.2
    if expression == 4:  # fear
        return not (arousal >= 0 and valence <= 0) or intensity <= 0.2
    if expression == 5:  # disgust
        return valence >= 0 or intensity <= 0.3
    if expression == 6:  # anger
        return arousal <= 0 or intensity <= 0.2
    if expression == 7:  # contempt
        return valence >= 0 or intensity <= 0.2
    raise ValueError(f"no cleaning rule for AffectNet expression {expression}")


@dataclass(frozen=True)
class Sample:
    row: LabelRow
    target: int  # model class


@dataclass
class Selection:
    """The rows to score, and how many rows were read and skipped, by reason."""

    samples: list[Sample]
    rows: int
    skipped: Counter = field(default_factory=Counter)
    skipped_expressions: Counter = field(default_factory=Counter)  # AffectNet id -> rows
    cleaned_out: Counter = field(default_factory=Counter)  # AffectNet id -> rows


def select_rows(
    rows: Sequence[LabelRow], nclass: int, cleaned: bool = True, limit: int | None = None
) -> Selection:
    """Keep the rows the model can be scored on, in file order; `limit` stops after that
    many kept rows."""
    selection = Selection(samples=[], rows=0)
    for row in rows:
        if limit is not None and len(selection.samples) >= limit:
            break
        selection.rows += 1
        target = class_index(row.expression, nclass)
        if target is None:
            selection.skipped[SKIP_EXPRESSION] += 1
            selection.skipped_expressions[row.expression] += 1
        elif row.valence is None or row.arousal is None:
            selection.skipped[SKIP_MISSING_AFFECT] += 1
        elif cleaned and fails_cleaning(row.expression, row.valence, row.arousal):
            selection.skipped[SKIP_CLEANING] += 1
            selection.cleaned_out[row.expression] += 1
        else:
            selection.samples.append(Sample(row, target))
    return selection


# --- images -------------------------------------------------------------------------------------


class UnreadableImage(Exception):
    """An image file that is missing or cannot be decoded; the row is skipped."""


def read_image_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB; raises UnreadableImage with the reason."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UnreadableImage(exc.strerror or str(exc)) from None
    if data.size == 0:
        raise UnreadableImage("empty file")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableImage("not an image OpenCV can decode")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def face_crop(image: np.ndarray, box: tuple[float, float, float, float] | None) -> np.ndarray:
    """The 256x256 network input: the box through the published aligner, or the whole image
    resized when there is no box."""
    height, width = image.shape[:2]
    matrix = affine_full_frame(width, height) if box is None else affine_from_box(box)
    return crop_face(image, matrix)


def load_crop(path: Path, box) -> np.ndarray | UnreadableImage:
    try:
        return face_crop(read_image_rgb(path), box)
    except UnreadableImage as exc:
        return exc


def loaded_batches(
    samples: Sequence[Sample], images_root: Path, batch_size: int, pool: ThreadPoolExecutor
) -> Iterator[list[tuple[Sample, np.ndarray | UnreadableImage]]]:
    """Batches of (sample, crop or the reason it is missing); the next batch is read in the
    pool while the caller runs the model on the current one."""
    pending: tuple[Sequence[Sample], list[Future]] | None = None
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        futures = [pool.submit(load_crop, images_root / s.row.image, s.row.box) for s in batch]
        if pending is not None:
            yield [(s, f.result()) for s, f in zip(*pending)]
        pending = (batch, futures)
    if pending is not None:
        yield [(s, f.result()) for s, f in zip(*pending)]


# --- the evaluation -----------------------------------------------------------------------------


@dataclass
class SkippedImage:
    line: int
    path: str
    reason: str


@dataclass
class Evaluation:
    """Labels and predictions of every scored face, and what was skipped on the way."""

    nclass: int
    flip: bool
    cleaned: bool
    device: str
    precision: str
    selection: Selection
    unreadable: list[SkippedImage]
    lines: np.ndarray  # label-file line of each scored face
    true_expression: np.ndarray
    predicted_expression: np.ndarray
    true_valence: np.ndarray
    predicted_valence: np.ndarray
    true_arousal: np.ndarray
    predicted_arousal: np.ndarray

    @property
    def used(self) -> int:
        return len(self.lines)

    @property
    def skipped(self) -> dict[str, int]:
        counts = dict(self.selection.skipped)
        counts[SKIP_UNREADABLE] = len(self.unreadable)
        return {reason: counts.get(reason, 0) for reason in SKIP_REASONS}

    def scores(self) -> dict[str, dict[str, float]]:
        return {
            "expression": {"acc": metrics.acc(self.true_expression, self.predicted_expression)},
            "valence": metrics.regression_scores(self.true_valence, self.predicted_valence),
            "arousal": metrics.regression_scores(self.true_arousal, self.predicted_arousal),
        }

    def confusion(self) -> np.ndarray:
        return metrics.confusion_matrix(
            self.true_expression, self.predicted_expression, self.nclass
        )


def evaluate(
    rows: Sequence[LabelRow],
    images_root: str | os.PathLike,
    predictor: Predictor,
    *,
    flip: bool = True,
    cleaned: bool = True,
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = False,
    workers: int = 4,
) -> Evaluation:
    """Run `predictor` over the labelled faces and collect labels and predictions.

    With `flip`, valence and arousal are the mean over the crop and its mirror (both in one
    model batch) and the expression comes from the crop alone. Valence and arousal are clipped
    to [-1, 1]. Unreadable images are skipped and listed. Raises EmonetError when no face is
    left to score."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    images_root = Path(images_root)
    selection = select_rows(rows, predictor.nclass, cleaned=cleaned, limit=limit)
    if not selection.samples:
        raise EmonetError(
            f"no face to score: all {selection.rows} label rows were skipped "
            f"({describe_counts(selection.skipped)})"
        )

    scored: list[Sample] = []
    unreadable: list[SkippedImage] = []
    expressions, valences, arousals = [], [], []
    bar = tqdm(total=len(selection.samples), disable=not progress, unit="face", desc="evaluate")
    with ThreadPoolExecutor(max_workers=workers) as pool, bar:
        for batch in loaded_batches(selection.samples, images_root, batch_size, pool):
            readable = []
            for sample, crop in batch:
                if isinstance(crop, UnreadableImage):
                    path = str(images_root / sample.row.image)
                    unreadable.append(SkippedImage(sample.row.line, path, str(crop)))
                else:
                    readable.append((sample, crop))
            if readable:
                crops = np.stack([crop for _, crop in readable])
                count = len(crops)
                if flip:
                    crops = np.concatenate([crops, crops[:, :, ::-1]])
                out = predictor(crops)
                valence, arousal = out.valence[:count], out.arousal[:count]
                if flip:
                    valence = (valence + out.valence[count:]) / 2.0
                    arousal = (arousal + out.arousal[count:]) / 2.0
                scored.extend(sample for sample, _ in readable)
                expressions.append(out.expression[:count].argmax(axis=1))
                valences.append(np.clip(valence, -1.0, 1.0))
                arousals.append(np.clip(arousal, -1.0, 1.0))
            bar.update(len(batch))

    if not scored:
        raise EmonetError(
            f"no face to score: none of the {len(unreadable)} images could be read "
            f"(first: {unreadable[0].path}: {unreadable[0].reason})"
        )
    return Evaluation(
        nclass=predictor.nclass,
        flip=flip,
        cleaned=cleaned,
        device=str(predictor.device),
        precision=predictor.precision,
        selection=selection,
        unreadable=unreadable,
        lines=np.array([s.row.line for s in scored]),
        true_expression=np.array([s.target for s in scored]),
        predicted_expression=np.concatenate(expressions),
        true_valence=np.array([s.row.valence for s in scored]),
        predicted_valence=np.concatenate(valences).astype(np.float64),
        true_arousal=np.array([s.row.arousal for s in scored]),
        predicted_arousal=np.concatenate(arousals).astype(np.float64),
    )


# --- reporting ----------------------------------------------------------------------------------


SKIP_DESCRIPTIONS = {
    SKIP_EXPRESSION: "expression not scored",
    SKIP_MISSING_AFFECT: "valence/arousal missing",
    SKIP_CLEANING: "cleaned out",
    SKIP_UNREADABLE: "image unreadable",
}
REGRESSION_SCORES = ("ccc", "pcc", "rmse", "sagr")
LABEL_WIDTH = 24
CELL_WIDTH = 6
GROUP_WIDTH = len(REGRESSION_SCORES) * (CELL_WIDTH + 1) - 1


def describe_counts(counts: dict[str, int]) -> str:
    parts = [f"{n} {SKIP_DESCRIPTIONS[reason]}" for reason, n in counts.items() if n]
    return ", ".join(parts) or "none"


def format_score(value: float, decimals: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{decimals}f}"


def table_row(label: str, acc: str, valence: list[str], arousal: list[str]) -> str:
    groups = [" ".join(f"{cell:>{CELL_WIDTH}}" for cell in cells) for cells in (valence, arousal)]
    valence_cells, arousal_cells = (f"{group:^{GROUP_WIDTH}}" for group in groups)
    return f"{label:<{LABEL_WIDTH}}{acc:>{CELL_WIDTH}}   {valence_cells}   {arousal_cells}"


def format_table(evaluation: Evaluation) -> str:
    """The paper's table layout (ACC, then CCC, PCC, RMSE, SAGR of valence and arousal) for
    this run and the published model, then per-class recall and the confusion matrix."""
    settings = [
        "flip" if evaluation.flip else "no flip",
        "cleaned" if evaluation.cleaned else "all rows",
        evaluation.precision,
    ]
    headers = [name.upper() for name in REGRESSION_SCORES]
    lines = [
        f"EmoNet, {evaluation.nclass} classes: {evaluation.used} faces scored of "
        f"{evaluation.selection.rows} label rows ({', '.join(settings)})",
        f"skipped: {describe_counts(evaluation.skipped)}",
        "",
        table_row("", "", ["Valence"], ["Arousal"]),
        table_row("", "ACC", headers, headers),
    ]
    for label, scores, decimals in (
        ("this run", evaluation.scores(), 3),
        ("paper (AffectNet test)", PUBLISHED[evaluation.nclass], 2),
    ):
        acc = format_score(scores["expression"]["acc"], decimals)
        valence, arousal = (
            [format_score(scores[dimension][name], decimals) for name in REGRESSION_SCORES]
            for dimension in ("valence", "arousal")
        )
        lines.append(table_row(label, acc, valence, arousal))

    names = class_names(evaluation.nclass)
    confusion = evaluation.confusion()
    recall = metrics.per_class_recall(confusion)
    width = max(len(name) for name in names) + 2
    lines += ["", "per-class recall and confusion matrix (rows: label, columns: prediction)"]
    lines.append(f"{'':<{width}}{'recall':>7}{'n':>7}  " + "".join(f"{n:>{width}}" for n in names))
    for name, class_recall, row in zip(names, recall, confusion):
        lines.append(
            f"{name:<{width}}{format_score(class_recall, 3):>7}{row.sum():>7}  "
            + "".join(f"{count:>{width}}" for count in row)
        )
    if evaluation.nclass == 5:
        lines += ["", f"note: {FIVE_CLASS_NOTE}"]
    return "\n".join(line.rstrip() for line in lines)


def json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def evaluation_report(
    evaluation: Evaluation,
    *,
    labels: str | os.PathLike,
    images_root: str | os.PathLike,
    weights_path: str | os.PathLike | None = None,
    weights_sha256: str | None = None,
) -> dict:
    """The JSON-ready report: settings, counts, scores, confusion matrix and per-class recall;
    undefined scores are null."""
    names = class_names(evaluation.nclass)
    confusion = evaluation.confusion()
    recall = metrics.per_class_recall(confusion)
    selection = evaluation.selection
    report = {
        "labels": str(labels),
        "images": str(images_root),
        "nclass": evaluation.nclass,
        "class_names": names,
        "weights": {
            "path": None if weights_path is None else str(weights_path),
            "sha256": weights_sha256,
        },
        "device": evaluation.device,
        "precision": evaluation.precision,
        "flip": evaluation.flip,
        "cleaned": evaluation.cleaned,
        "counts": {
            "rows": selection.rows,
            "used": evaluation.used,
            "skipped": evaluation.skipped,
            "skipped_expressions": {
                AFFECTNET_EXPRESSIONS[i]: n
                for i, n in sorted(selection.skipped_expressions.items())
            },
            "cleaned_out": {
                AFFECTNET_EXPRESSIONS[i]: n for i, n in sorted(selection.cleaned_out.items())
            },
            "unreadable_images": [asdict(item) for item in evaluation.unreadable],
        },
        "metrics": {
            dimension: {name: json_number(value) for name, value in scores.items()}
            for dimension, scores in evaluation.scores().items()
        },
        "confusion_matrix": {
            "rows": "label",
            "columns": "prediction",
            "classes": names,
            "counts": confusion.tolist(),
        },
        "per_class_recall": {name: json_number(float(r)) for name, r in zip(names, recall)},
        "published": PUBLISHED[evaluation.nclass],
    }
    if evaluation.nclass == 5:
        report["note"] = FIVE_CLASS_NOTE
    return report


def write_report(path: str | os.PathLike, report: dict) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, allow_nan=False)
        f.write("\n")
