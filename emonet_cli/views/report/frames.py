"""`frames.parquet`: every analysed frame of every input and person of a results folder as one
typed table (Apache Parquet, through pyarrow, an optional dependency).

One row per row of each results CSV, after four columns saying whose it is (`input`, `person`,
`model`, `csv`). The table's columns are fixed when the file is opened, so a first pass reads
the header line of every CSV: their union, the label columns (`prob_<class>`,
`score_<category>`) of every model grouped at the end, null where a model has no such column.
Then the CSVs are read one by one (pyarrow's CSV reader) and written in row groups of whole
inputs: the memory held is one input and one row group, whatever the size of the corpus. An
input whose CSV cannot be read as typed has no rows; the rest are written.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emonet_cli.formats.fileio import atomic_path
from emonet_cli.formats.names import shown_name
from emonet_cli.views.report.collect import Row
from emonet_cli.views.report.table import relative

FRAMES_NAME = "frames.parquet"
ROW_GROUP_ROWS = 131_072  # at most, unless one input has more: ~20-40 MB in memory
SAMPLE_ROWS = 200  # rows read to type a column this module does not know
LABEL_PREFIXES = ("score_", "prob_")  # the union of every model's labels, in this order
OWNER_COLUMNS = ("input", "person", "model", "csv")

# The columns whose type is known, and the kinds of the others by their names: `int`, `bool`,
# `float32`, `float64` (the time, whose microseconds float32 would round away after a few
# minutes) and `name` (text, dictionary-encoded).
KNOWN_KINDS = {
    "frame": "int",
    "time": "float64",
    "face": "bool",
    "expression": "int",
    "expression_name": "name",
    "categories": "name",
    # per-frame quality
    "yaw": "float32",
    "pitch": "float32",
    "roll": "float32",
    "face_size": "float32",
    "sharpness": "float32",
    "usable": "bool",
}
FLOAT_NAMES = re.compile(r"(prob|score)_.+|.+_conf|(valence|arousal|dominance)(_.+)?")
INTEGER = re.compile(r"[-+]?[0-9]+")


def column_kind(name: str) -> str | None:
    """The kind of a known column (see KNOWN_KINDS), None for one typed by its values."""
    if name in KNOWN_KINDS:
        return KNOWN_KINDS[name]
    return "float32" if FLOAT_NAMES.fullmatch(name) else None


def value_kind(text: str) -> str | None:
    """`int`, `float32` or `name` for a CSV cell; None for an empty one."""
    if text == "":
        return None
    if INTEGER.fullmatch(text):
        return "int"
    try:
        float(text)
    except ValueError:
        return "name"
    return "float32"


def widest(kinds: set[str]) -> str:
    """The kind that holds values of all these kinds (float32 for none: nulls)."""
    for kind in ("name", "float32", "int"):
        if kind in kinds:
            return kind
    return "float32"


def arrow_type(kind: str):
    import pyarrow as pa

    return {
        "int": pa.int64(),
        "bool": pa.bool_(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "name": pa.dictionary(pa.int32(), pa.string()),
    }[kind]


@dataclass
class Source:
    """One results CSV and whose frames it holds (a row of index.csv)."""

    row: Row
    header: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.row.csv


def frame_sources(rows: Sequence[Row]) -> list[Source]:
    """The CSVs of the analysed inputs and people, in the order of index.csv."""
    return [Source(row) for row in rows if row.status == "ok" and row.csv is not None]


def read_header(path: Path, rows: int = 0) -> tuple[list[str], list[list[str]]]:
    """The header of a CSV and its first `rows` rows."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError("empty, not a results CSV")
        return header, list(itertools.islice(reader, rows))


def column_kinds(sources: list[Source], problems: dict[int, str]) -> dict[str, str]:
    """The union of the CSVs' columns with their kinds, in table order: those of the first CSV
    that has each, then the label columns. Reads each header (and, for columns of unknown
    type, the first SAMPLE_ROWS rows); a CSV that cannot be read is put in `problems`."""
    order: dict[str, None] = {}
    unknown: dict[str, set[str]] = {}
    for k, source in enumerate(sources):
        try:
            source.header, _ = read_header(source.path)
            names = [name for name in source.header if column_kind(name) is None]
            if names:
                _, sample = read_header(source.path, SAMPLE_ROWS)
                for name in names:
                    j = source.header.index(name)
                    seen = unknown.setdefault(name, set())
                    seen.update(value_kind(row[j]) for row in sample if j < len(row))
        except (OSError, UnicodeDecodeError, csv.Error, ValueError) as error:
            problems[k] = getattr(error, "strerror", None) or str(error)
            continue
        order.update(dict.fromkeys(source.header))
    labels = [[name for name in order if name.startswith(prefix)] for prefix in LABEL_PREFIXES]
    own = [name for name in order if not name.startswith(LABEL_PREFIXES)]
    kinds = {}
    for name in [*own, *itertools.chain(*labels)]:
        if name in OWNER_COLUMNS:
            continue  # never in a results CSV; the table's own would clash
        kinds[name] = column_kind(name) or widest(unknown.get(name, set()) - {None})
    return kinds


@dataclass
class FramesWritten:
    """What write_frames wrote: the file, its rows and row groups, and the rows of index.csv
    (inputs or people) whose CSV it left out, with why."""

    path: Path
    rows: int
    row_groups: int
    left_out: list[tuple[Row, str]]


class _RowGroups:
    """Tables of whole inputs gathered into row groups of at most ROW_GROUP_ROWS rows (an
    input with more has row groups of its own), each written as soon as it is full."""

    def __init__(self, writer):
        self.writer = writer
        self.pending: list = []
        self.pending_rows = 0
        self.rows = 0
        self.row_groups = 0

    def add(self, table) -> None:
        if self.pending_rows and self.pending_rows + table.num_rows > ROW_GROUP_ROWS:
            self.flush()
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows
        self.row_groups += -(-table.num_rows // ROW_GROUP_ROWS)
        self.pending, self.pending_rows = [], 0


def frames_schema(kinds: dict[str, str]):
    import pyarrow as pa

    names = arrow_type("name")
    owners = [pa.field(name, names, nullable=False) for name in OWNER_COLUMNS]
    return pa.schema([*owners, *(pa.field(name, arrow_type(kind)) for name, kind in kinds.items())])


def write_frames(rows: Sequence[Row], path: Path, results: Path) -> FramesWritten:
    """Write `path` (frames.parquet) atomically from the CSVs of `rows` (rows of index.csv,
    paths relative to `results`). The rows whose CSV could not be written are returned."""
    import pyarrow.parquet as pq

    sources = frame_sources(rows)
    problems: dict[int, str] = {}
    kinds = column_kinds(sources, problems)
    schema = frames_schema(kinds)
    with atomic_path(path) as tmp:
        # Dictionaries for names only: measured values are nearly all distinct, and a
        # dictionary tried on each float column costs time and bytes.
        dictionary = [name for name in schema.names if kinds.get(name, "name") == "name"]
        # A file object, not a name: pyarrow takes only names that are valid UTF-8.
        with (
            open(tmp, "wb") as sink,
            pq.ParquetWriter(sink, schema, compression="zstd", use_dictionary=dictionary) as writer,
        ):
            groups = _RowGroups(writer)
            for k, source in enumerate(sources):
                if k in problems:
                    continue
                try:
                    table = _input_table(source, schema, kinds, results)
                except (OSError, ValueError, TypeError, KeyError, NotImplementedError) as error:
                    # pyarrow's errors derive from these (ArrowInvalid from ValueError...).
                    problems[k] = " ".join(str(error).split())
                    continue
                groups.add(table)  # a write error (a full disk) ends the whole file
            groups.flush()
    left_out = [(sources[k].row, reason) for k, reason in sorted(problems.items())]
    return FramesWritten(path, groups.rows, groups.row_groups, left_out)


def _input_table(source: Source, schema, kinds: dict[str, str], results: Path):
    """One CSV as a table of the file's schema: its columns typed, the others null."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read_types = {}
    for name in source.header:
        kind = kinds.get(name)
        if kind is not None:
            # Floats are parsed as double and rounded once: each value is the float32 of
            # the double the CSV's text is, as numpy or pandas would read it.
            read_types[name] = arrow_type("float64" if kind == "float32" else kind)
    # Opened here, not by name: pyarrow takes only names that are valid UTF-8.
    with open(source.path, "rb") as f:
        table = pacsv.read_csv(
            f,
            read_options=pacsv.ReadOptions(use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types=read_types,
                include_columns=list(read_types),
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    n = table.num_rows
    # Names whose bytes are not UTF-8 as `\\xNN`, as index.csv shows them (formats/names.py).
    owner = {
        "input": shown_name(source.row.input),
        "person": shown_name(source.row.person),
        "model": source.row.model,
        "csv": shown_name(relative(source.path, results)),
    }
    columns: list[Any] = []
    for column in schema:
        if column.name in owner:
            columns.append(_constant(owner[column.name], n))
        elif column.name in read_types:
            values = table.column(column.name)
            columns.append(values if values.type == column.type else values.cast(column.type))
        else:
            columns.append(pa.nulls(n, column.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _constant(text: str, n: int):
    """`text` n times, dictionary-encoded (one entry)."""
    import numpy as np
    import pyarrow as pa

    # Index 0 of a one-entry dictionary is valid by construction: skip the check (slow).
    return pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([text]), safe=False)
