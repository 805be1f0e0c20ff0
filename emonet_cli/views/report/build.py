"""The report of a results folder: its inputs found, each CSV streamed once into its row of
`index.csv` and its picture for the page, then both written; with pyarrow, every CSV's rows
into `frames.parquet` and the index into `index.parquet` too."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from emonet_cli.errors import InputError
from emonet_cli.outputs.failures import FAILURE_SUFFIX
from emonet_cli.outputs.writers import SUMMARY_SUFFIX
from emonet_cli.views.report.collect import Row, find_results, rows_of
from emonet_cli.views.report.frames import FRAMES_NAME, FramesWritten, write_frames
from emonet_cli.views.report.page import (
    DEFAULT_FEW_FACES,
    DEFAULT_FEW_USABLE,
    PAGE_NAME,
    write_page,
)
from emonet_cli.views.report.table import (
    INDEX_NAME,
    INDEX_TABLE_NAME,
    write_index,
    write_index_table,
)

log = logging.getLogger("emonet")
PARQUET_INSTALL = "pip install 'emonet-cli[parquet]'"


@dataclass
class Report:
    """What a report wrote and counted (inputs, not people)."""

    index: Path
    page: Path
    inputs: int
    failed: int
    rows: list[Row]
    index_table: Path | None = None  # index.parquet, where pyarrow is installed
    frames: FramesWritten | None = None  # frames.parquet, unless skipped
    skipped: list[str] = field(default_factory=list)  # what was not written, and why


def has_pyarrow() -> bool:
    """Whether pyarrow (the `parquet` extra) can be imported, with its CSV and Parquet parts."""
    try:
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def report_results(
    results: str | Path,
    page: str | Path | None = None,
    few_faces: float = DEFAULT_FEW_FACES,
    few_usable: float = DEFAULT_FEW_USABLE,
    frames: bool = True,
) -> Report:
    """Write `RESULTS/index.csv` and the page (default `RESULTS/report.html`) for the results
    of `emonet analyze` under `results` (sub-folders included). Inputs with a face in fewer
    than `few_faces` of their frames, or fewer than `few_usable` of their frames usable (the
    CSV's usable column), are flagged on the page. With pyarrow, also `RESULTS/index.parquet`
    and, unless not `frames`, `RESULTS/frames.parquet` (every row of every CSV); without it,
    one warning says what was skipped."""
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
    parquet = has_pyarrow()
    written = None
    if frames and parquet:
        written = write_frames(rows, results / FRAMES_NAME, results)
        for row, reason in written.left_out:
            row.warnings.append(f"not in {FRAMES_NAME} ({reason})")
            log.warning(f"{row.csv}: left out of {FRAMES_NAME} ({reason})")
    skipped = []
    if not parquet:
        names = f"{FRAMES_NAME} and {INDEX_TABLE_NAME}" if frames else INDEX_TABLE_NAME
        skipped.append(f"pyarrow is not installed: {names} not written ({PARQUET_INSTALL})")
        log.warning(skipped[-1])
    index = results / INDEX_NAME
    write_index(rows, index, results)
    index_table = None
    if parquet:
        index_table = results / INDEX_TABLE_NAME
        write_index_table(rows, index_table, results)
    page = Path(page) if page is not None else results / PAGE_NAME
    write_page(rows, page, results, few_faces, few_usable)
    failed = sum(row.status == "failed" for row in inputs)
    return Report(index, page, len(inputs), failed, rows, index_table, written, skipped)
