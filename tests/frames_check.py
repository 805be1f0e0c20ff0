"""frames.parquet checked against the results CSVs it was made of, value for value, with the
standard library's csv reader as the independent side."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

OWNER_COLUMNS = ("input", "person", "model", "csv")


def index_rows(results: Path) -> list[dict[str, str]]:
    with open(results / "index.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def expected_value(kind: str, text: str):
    """What a column of this type (pyarrow's name of it) must hold for the CSV cell `text`:
    empty cells are null, float32 columns the float32 of the double the text spells."""
    if text == "":
        return None
    if kind == "bool":
        return {"1": True, "0": False}[text]
    if kind == "int64":
        return int(text)
    if kind.startswith("dictionary"):
        return text
    if kind == "double":
        return float(text)
    assert kind == "float", kind
    return float(np.float32(float(text)))


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


def assert_frames_equal_csvs(results: Path) -> dict[str, int]:
    """Every analysed row of index.csv (an input, or a person of one) has its CSV's rows in
    frames.parquet, in order, each cell equal to the CSV's (NaN where the CSV has NaN, null
    where the CSV has no such column); nothing else is there. Returns rows per CSV."""
    import pyarrow.parquet as pq

    table = pq.read_table(results / "frames.parquet")
    columns = table.to_pydict()
    by_csv: dict[str, list[int]] = {}
    for i, name in enumerate(columns["csv"]):
        by_csv.setdefault(name, []).append(i)
    analysed = [r for r in index_rows(results) if r["status"] == "ok" and r["csv"]]
    assert sorted(by_csv) == sorted(r["csv"] for r in analysed)
    first = [by_csv[r["csv"]][0] for r in analysed]
    assert first == sorted(first)  # in the order of index.csv
    counts = {}
    for row in analysed:
        header, rows = csv_rows(results / row["csv"])
        where = by_csv[row["csv"]]
        assert where == list(range(where[0], where[0] + len(rows)))  # together, in order
        counts[row["csv"]] = len(rows)
        for column in ("input", "person", "model"):
            assert {columns[column][i] for i in where} == {row[column]}, column
        for column in table.column_names:
            if column in OWNER_COLUMNS:
                continue
            got = [columns[column][i] for i in where]
            if column not in header:
                assert got == [None] * len(rows), (row["csv"], column)
                continue
            kind = str(table.schema.field(column).type)
            expected = [expected_value(kind, r[column]) for r in rows]
            bad = [k for k, (a, b) in enumerate(zip(got, expected)) if not same(a, b)]
            assert not bad, (row["csv"], column, bad[0], got[bad[0]], expected[bad[0]])
    return counts
