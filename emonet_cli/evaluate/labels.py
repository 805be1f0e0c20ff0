"""Label files for `emonet evaluate` and `emonet finetune`, read into rows, and the rows a
model is scored on.

Two layouts: AffectNet's CSV, and a simple `image,expression,valence,arousal[,x1,y1,x2,y2]`.
AffectNet's holds AffectNet expression ids; the simple one AffectNet ids for the published
models (`affectnet` says which of them each model scores) and class indices for a lab's own
classes. An empty valence or arousal, like AffectNet's -2, means the row has none.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet_cli.constants import N_LANDMARKS
from emonet_cli.errors import FormatError
from emonet_cli.evaluate.affectnet import (
    AFFECTNET_EXPRESSIONS,
    MISSING_AFFECT,
    SCORED_EXPRESSIONS,
    class_index,
    fails_cleaning,
)
from emonet_cli.faces import parse_finite

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

# Why a label row is not scored, in the order reports list them. The last is found by
# `evaluate` when it reads the images; the others by `select_rows`.
SKIP_EXPRESSION = "expression_not_scored"
SKIP_MISSING_AFFECT = "missing_valence_arousal"
SKIP_CLEANING = "cleaning"
SKIP_UNREADABLE = "unreadable_image"
CLEANED_EXPRESSIONS = SCORED_EXPRESSIONS[8]  # the ids the cleaning has rules for
SKIP_REASONS = (SKIP_EXPRESSION, SKIP_MISSING_AFFECT, SKIP_CLEANING, SKIP_UNREADABLE)
SKIP_DESCRIPTIONS = {
    SKIP_EXPRESSION: "expression not scored",
    SKIP_MISSING_AFFECT: "valence/arousal missing",
    SKIP_CLEANING: "cleaned out",
    SKIP_UNREADABLE: "image unreadable",
}

Box = tuple[float, float, float, float]
AFFECTNET_IDS = len(AFFECTNET_EXPRESSIONS)
LAYOUT_AFFECTNET = "affectnet"
LAYOUT_SIMPLE = "simple"


@dataclass(frozen=True)
class LabelRow:
    """One labelled face. valence / arousal are None where the label file says -2 (missing);
    box is (x1, y1, x2, y2) in image pixels, or None for an image that is already a face crop."""

    line: int
    image: str
    expression: int  # AffectNet id, 0-10
    valence: float | None
    arousal: float | None
    box: Box | None = None


RowParser = Callable[[list[str], int, str], LabelRow]  # (fields, line, where) -> row


@dataclass
class LabelFile:
    """The rows of a label file and its layout (LAYOUT_AFFECTNET or LAYOUT_SIMPLE)."""

    layout: str
    rows: list[LabelRow]


def read_labels(path: str | os.PathLike, expressions: int | None = AFFECTNET_IDS) -> list[LabelRow]:
    """Every row of an AffectNet CSV or of a simple `image,expression,valence,arousal[,x1,y1,
    x2,y2]` file. A header row is optional: without one, 9 columns mean AffectNet's layout and
    4 or 8 the simple one. Raises FormatError naming the file and line of the first bad row.
    The simple layout's expressions must lie below `expressions`: AffectNet's 11 ids by
    default, a model's class count, or None for any class index."""
    return read_label_file(path, expressions).rows


def read_label_file(path: str | os.PathLike, expressions: int | None = AFFECTNET_IDS) -> LabelFile:
    """read_labels, with the layout found."""
    path = Path(path)
    return parse_label_rows(csv_rows(path), path, expressions)


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The line number and fields of each row of a CSV file that is not blank; FormatError
    when the file cannot be read as UTF-8 CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for fields in reader:
                if any(field.strip() for field in fields):
                    yield reader.line_num, fields
    except OSError as exc:
        raise FormatError(f"cannot read label file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path} is not a UTF-8 text file") from None
    except csv.Error as exc:
        raise FormatError(f"{path} is not a readable CSV file: {exc}") from None


def parse_label_rows(
    rows: Iterable[tuple[int, list[str]]], path: Path, expressions: int | None = AFFECTNET_IDS
) -> LabelFile:
    """The label rows of a file's (line number, fields) rows, skipping a header row."""
    parse_row = None
    width = 0
    found = LabelFile(LAYOUT_SIMPLE, [])
    for line, fields in rows:
        where = f"{path}, line {line}"
        if parse_row is None:
            parse_row, width, is_header = row_parser(fields, where, expressions)
            found.layout = parse_row.layout
            if is_header:
                continue
        if len(fields) != width:
            raise FormatError(f"{where}: expected {width} columns, found {len(fields)}")
        found.rows.append(parse_row(fields, line, where))
    return found


def row_parser(
    first: list[str], where: str, expressions: int | None = AFFECTNET_IDS
) -> tuple[RowParser, int, bool]:
    """(parser, column count, whether `first` is a header) for the layout `first` reveals;
    the parser's `layout` attribute names it."""
    names = [name.strip().lower() for name in first]
    if "expression" not in names:
        if len(first) == len(AFFECTNET_COLUMNS):
            return affectnet_parser(list(AFFECTNET_COLUMNS)), len(first), False
        if len(first) in (len(SIMPLE_COLUMNS), len(SIMPLE_COLUMNS) + len(BOX_COLUMNS)):
            names = list(SIMPLE_COLUMNS + BOX_COLUMNS)[: len(first)]
            return simple_parser(names, expressions), len(first), False
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
    if parser is simple_parser:
        return simple_parser(names, expressions), len(first), True
    return parser(names), len(first), True


def affectnet_parser(names: list[str]) -> RowParser:
    """A parser of AffectNet rows whose columns are named `names`. The box comes from the
    landmarks, else from the face rectangle."""
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

    parse.layout = LAYOUT_AFFECTNET
    return parse


def simple_parser(names: list[str], expressions: int | None = AFFECTNET_IDS) -> RowParser:
    """A parser of simple-layout rows whose columns are named `names` (the box ones optional)
    and whose expressions lie below `expressions` (None: any class index)."""
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
            expression=expression_id(fields[column["expression"]], where, expressions),
            valence=affect_value(fields[column["valence"]], "valence", where),
            arousal=affect_value(fields[column["arousal"]], "arousal", where),
            box=box,
        )

    parse.layout = LAYOUT_SIMPLE
    return parse


def image_name(text: str, where: str) -> str:
    """The image path of a row, relative to the images folder."""
    name = text.strip()
    if not name:
        raise FormatError(f"{where}: the image path is empty")
    return name


def expression_id(text: str, where: str, expressions: int | None = AFFECTNET_IDS) -> int:
    """An expression id below `expressions`: an AffectNet id, 0-10, by default."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < (expressions or value + 1):
        if expressions == AFFECTNET_IDS:
            wanted = f"an AffectNet id (0-{AFFECTNET_IDS - 1})"
        elif expressions is None:
            wanted = "a class index (0, 1, ...)"
        else:
            wanted = f"one of the {expressions} classes (0-{expressions - 1})"
        raise FormatError(f"{where}: expression {text.strip()!r} is not {wanted}")
    return value


def affect_value(text: str, what: str, where: str) -> float | None:
    """A valence or arousal in [-1, 1], or None when empty or AffectNet's -2 (missing)."""
    if not text.strip():
        return None
    value = parse_finite(text, where, what)
    if value == MISSING_AFFECT:
        return None
    if not -1.0 <= value <= 1.0:
        raise FormatError(f"{where}: {what} {value:g} is outside [-1, 1] (and not -2, missing)")
    return value


def landmark_box(text: str, where: str) -> Box:
    """The bounding box of AffectNet's `x1;y1;...;x68;y68` landmarks."""
    values = [parse_finite(value, where, "landmark") for value in text.split(";")]
    if len(values) != 2 * N_LANDMARKS:
        raise FormatError(
            f"{where}: facial_landmarks has {len(values)} numbers, expected "
            f"{2 * N_LANDMARKS} (x1;y1;...;x68;y68)"
        )
    points = np.asarray(values).reshape(-1, 2)
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return checked_box((float(x1), float(y1), float(x2), float(y2)), where)


def checked_box(box: tuple[float, ...], where: str) -> Box:
    """`box` (x1, y1, x2, y2), refused when it is empty."""
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise FormatError(f"{where}: face box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is empty")
    return (x1, y1, x2, y2)


# --- the rows to score ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A row to score, with the model class its label is scored as."""

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
    rows: Sequence[LabelRow],
    nclass: int,
    cleaned: bool = True,
    limit: int | None = None,
    labels: str = "published",
) -> Selection:
    """Keep the rows the model can be scored on, in file order; `limit` stops after that
    many kept rows. `labels` says how the rows name the model's classes (see
    constants.LABEL_SCHEMES): the published models need valence and arousal on every row,
    fine-tuned ones score the expression of rows without them. The cleaning applies to
    AffectNet ids (not to a lab's own classes)."""
    selection = Selection(samples=[], rows=0)
    for row in rows:
        if limit is not None and len(selection.samples) >= limit:
            break
        selection.rows += 1
        if labels == "published":
            target = class_index(row.expression, nclass)
        else:
            target = row.expression if row.expression < nclass else None
        has_affect = row.valence is not None and row.arousal is not None
        if target is None:
            selection.skipped[SKIP_EXPRESSION] += 1
            selection.skipped_expressions[row.expression] += 1
        elif not has_affect and labels == "published":
            selection.skipped[SKIP_MISSING_AFFECT] += 1
        elif (
            cleaned
            and has_affect
            and labels != "index"
            and row.expression in CLEANED_EXPRESSIONS
            and fails_cleaning(row.expression, row.valence, row.arousal)
        ):
            selection.skipped[SKIP_CLEANING] += 1
            selection.cleaned_out[row.expression] += 1
        else:
            selection.samples.append(Sample(row, target))
    return selection


def describe_counts(counts: dict[str, int]) -> str:
    """Skipped-row counts by reason, in words: "2 cleaned out, 1 image unreadable"."""
    parts = [f"{n} {SKIP_DESCRIPTIONS[reason]}" for reason, n in counts.items() if n]
    return ", ".join(parts) or "none"
