"""`index.csv`: one row per input and per person of an input with several, the columns that
every family's results share, then a share column per expression or category found."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

from emonet_cli.formats.fileio import atomic_open
from emonet_cli.outputs.results import DIMENSIONS, category_slug
from emonet_cli.views.report.collect import Row

INDEX_NAME = "index.csv"
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


def write_index(rows: Sequence[Row], path: Path, results: Path) -> list[str]:
    """Write index.csv atomically; returns its columns."""
    columns = [*BASE_COLUMNS, *share_columns(rows), *TAIL_COLUMNS]
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row_values(row, results))
    return columns
