"""The report of a results folder: its inputs found, each CSV streamed once into its row of
`index.csv` and its picture for the page, then both written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emonet_cli.errors import InputError
from emonet_cli.outputs.failures import FAILURE_SUFFIX
from emonet_cli.outputs.writers import SUMMARY_SUFFIX
from emonet_cli.views.report.collect import Row, find_results, rows_of
from emonet_cli.views.report.page import (
    DEFAULT_FEW_FACES,
    DEFAULT_FEW_USABLE,
    PAGE_NAME,
    write_page,
)
from emonet_cli.views.report.table import INDEX_NAME, write_index


@dataclass
class Report:
    """What a report wrote and counted (inputs, not people)."""

    index: Path
    page: Path
    inputs: int
    failed: int
    rows: list[Row]


def report_results(
    results: str | Path,
    page: str | Path | None = None,
    few_faces: float = DEFAULT_FEW_FACES,
    few_usable: float = DEFAULT_FEW_USABLE,
) -> Report:
    """Write `RESULTS/index.csv` and the page (default `RESULTS/report.html`) for the results
    of `emonet analyze` under `results` (sub-folders included). Inputs with a face in fewer
    than `few_faces` of their frames, or fewer than `few_usable` of their frames usable (the
    CSV's usable column), are flagged on the page."""
    results = Path(results)
    if not results.is_dir():
        raise InputError(f"{results}: not a folder of results")
    rows: list[Row] = []
    for found in find_results(results):
        rows += rows_of(found)
    inputs = [row for row in rows if not row.person]
    if not inputs:
        raise InputError(
            f"{results}: no results of emonet analyze in it (no *{SUMMARY_SUFFIX} or "
            f"*{FAILURE_SUFFIX}, in it or its sub-folders)"
        )
    index = results / INDEX_NAME
    write_index(rows, index, results)
    page = Path(page) if page is not None else results / PAGE_NAME
    write_page(rows, page, results, few_faces, few_usable)
    failed = sum(row.status == "failed" for row in inputs)
    return Report(index, page, len(inputs), failed, rows)
