"""`index.csv`: one row per input and per person of an input with several, the columns that
every family's results share, then a share column per expression or category found; and
`index.parquet`, the same rows typed (with pyarrow, where it is installed)."""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from emonet_cli.formats.fileio import atomic_open, atomic_path
from emonet_cli.formats.names import shown_name
from emonet_cli.outputs.results import DIMENSIONS, category_slug
from emonet_cli.views.report.collect import Row

INDEX_NAME = "index.csv"
INDEX_TABLE_NAME = "index.parquet"
BASE_COLUMNS = (
    "input",
    "person",
    "status",
    "error",
    "model",
    "frames",
    "frames_with_face",
    "face_share",
    "usable_frames",
    "usable_share",
    "people",
    *(f"{kind}_{name}" for name in DIMENSIONS for kind in ("mean", "std")),
)
TAIL_COLUMNS = ("warnings", "csv", "record")
TEXT_COLUMNS = ("input", "person", "status", "error", "model", *TAIL_COLUMNS)
WARNING_SEPARATOR = " | "


def share_column(label: str) -> str:
    """`share_happy`, `share_doubt_confusion`: the share of the frames with a face that
    show a label."""
    return f"share_{category_slug(label)}"


def share_columns(rows: Sequence[Row]) -> list[str]:
    """The share columns of these rows' labels, in the order they are first met."""
    columns: dict[str, None] = {}
    for row in rows:
        if row.figures is not None:
            columns.update(dict.fromkeys(share_column(label) for label in row.figures.labels))
    return list(columns)


def number(value: float | int | None) -> str:
    """A figure as index.csv writes it: integers as such, floats as the shortest text that
    reads back as the same float64, none (no face, a failed input) as empty."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return repr(float(value)) if math.isfinite(value) else ""


def relative(path: Path | None, start: Path) -> str:
    """`path` relative to `start`, with forward slashes; empty for None."""
    if path is None:
        return ""
    return Path(os.path.relpath(path, start)).as_posix()


def row_values(row: Row, results: Path) -> dict[str, str]:
    """The row as index.csv writes it (share columns only for the row's own labels)."""
    values = {
        "input": row.input,
        "person": row.person,
        "status": row.status,
        "error": row.error,
        "model": row.model,
        "people": number(row.people),
        "warnings": WARNING_SEPARATOR.join(row.warnings),
        "csv": relative(row.csv, results),
        "record": relative(row.record, results),
    }
    figures = row.figures
    if figures is None:
        return values
    values["frames"] = number(figures.frames)
    values["frames_with_face"] = number(figures.frames_with_face)
    values["face_share"] = number(
        figures.frames_with_face / figures.frames if figures.frames else None
    )
    values["usable_frames"] = number(figures.usable)
    values["usable_share"] = number(figures.usable_share)
    for name, moments in figures.dimensions.items():
        values[f"mean_{name}"] = number(moments.average)
        values[f"std_{name}"] = number(moments.std)
    for label, share in figures.shares().items():
        values[share_column(label)] = number(share)
    return values


def index_values(rows: Sequence[Row], results: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The columns of index.csv and its rows as text (a name's bytes that are not UTF-8 as
    `\\xNN`, see formats/names.py, so that both tables hold valid UTF-8)."""
    columns = [*BASE_COLUMNS, *share_columns(rows), *TAIL_COLUMNS]
    shown = [{k: shown_name(v) for k, v in row_values(row, results).items()} for row in rows]
    return columns, shown


def write_index(rows: Sequence[Row], path: Path, results: Path) -> list[str]:
    """Write index.csv atomically; returns its columns."""
    columns, values = index_values(rows, results)
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(values)
    return columns


INTEGER = re.compile(r"-?[0-9]+")
COUNT_COLUMNS = ("frames", "frames_with_face", "people")


def index_column_kind(name: str, cells: Sequence[str]) -> str:
    """`text`, `int` or `float` for a column of index.csv: the known ones by name, the others
    by their cells (`number` writes integers without a point, figures with one)."""
    if name in TEXT_COLUMNS:
        return "text"
    if name in COUNT_COLUMNS:
        return "int"
    numbers = [cell for cell in cells if cell]
    try:
        [float(cell) for cell in numbers]
    except ValueError:
        return "text"
    return "int" if numbers and all(INTEGER.fullmatch(c) for c in numbers) else "float"


def write_index_table(rows: Sequence[Row], path: Path, results: Path) -> None:
    """Write index.parquet atomically: index.csv's rows and columns, typed. Counts are int64,
    figures float64 (the very doubles index.csv spells), null where index.csv is empty; the
    text columns are strings as in index.csv. Needs pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, values = index_values(rows, results)
    arrays = {}
    for name in columns:
        cells = [row.get(name, "") for row in values]
        kind = index_column_kind(name, cells)
        if kind == "text":
            arrays[name] = pa.array(cells, pa.string())
        elif kind == "int":
            arrays[name] = pa.array([int(c) if c else None for c in cells], pa.int64())
        else:
            arrays[name] = pa.array([float(c) if c else None for c in cells], pa.float64())
    with atomic_path(path) as tmp, open(tmp, "wb") as sink:  # any name pyarrow cannot take
        pq.write_table(pa.table(arrays), sink)
