"""A results folder of `emonet analyze` read into rows: one per input (analysed or failed) and
one per person of an input with several, each with its figures from its CSV and its picture.

An input is found by its summary `S.emonet.json` or its failure record `S.failed.json`
(outputs/failures.py), in the folder or any sub-folder; where both are there, the newer one
tells what its last run did.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from emonet_cli.constants import default_class_names
from emonet_cli.errors import EmonetError, FormatError
from emonet_cli.outputs.failures import FAILURE_SUFFIX, read_failure
from emonet_cli.outputs.writers import FACES_SUFFIX, SUMMARY_SUFFIX
from emonet_cli.views.report.figures import Figures, read_results_figures

NOVA_SUFFIXES = (".annotation", ".stream")  # the files NOVA opens (their headers)


@dataclass(frozen=True)
class Found:
    """Where one input's results lie: folder / stem.*, and which of its records are there."""

    folder: Path
    stem: str
    summary: Path | None = None
    failure: Path | None = None


@dataclass
class Row:
    """One row of index.csv (and of the page's table)."""

    input: str
    status: str  # "ok" or "failed"
    model: str = ""
    person: str = ""
    error: str = ""
    figures: Figures | None = None
    people: int | None = None
    warnings: list[str] = field(default_factory=list)
    csv: Path | None = None
    record: Path | None = None  # the summary JSON, or the failure record
    files: list[Path] = field(default_factory=list)  # the NOVA files, for links
    picture: dict | None = None
    categories: bool = False  # the labels are EMOTIC's categories, not expressions


def find_results(folder: Path) -> Iterator[Found]:
    """Every input with a summary or a failure record under `folder`, in path order."""
    for directory, subfolders, names in os.walk(folder):
        subfolders.sort()
        records: dict[str, dict[str, Path]] = {}
        for name in sorted(names):
            if name.startswith("."):  # part files of writers
                continue
            for suffix, kind in ((SUMMARY_SUFFIX, "summary"), (FAILURE_SUFFIX, "failure")):
                if name.endswith(suffix) and len(name) > len(suffix):
                    stem = name[: -len(suffix)]
                    records.setdefault(stem, {})[kind] = Path(directory, name)
        for stem in sorted(records):
            yield Found(Path(directory), stem, **records[stem])


def rows_of(found: Found) -> list[Row]:
    """The rows of one input: its own, then one per person where it has several."""
    failure = _last_failure(found)
    if failure is not None:
        return [failure]
    try:
        summary = json.loads(found.summary.read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        return [Row(str(found.folder / found.stem), "failed", error=_line(found.summary, error))]
    try:
        return _analysed(found, summary)
    except EmonetError as error:
        return [_failed_summary(found, summary, str(error))]


def _last_failure(found: Found) -> Row | None:
    """The failed row of an input whose last run failed, else None."""
    if found.failure is None:
        return None
    try:
        failed_later = found.summary is None or (
            found.failure.stat().st_mtime_ns >= found.summary.stat().st_mtime_ns
        )
        if not failed_later:
            return None
        record = read_failure(found.failure)
    except (OSError, ValueError) as error:
        if found.summary is not None:
            return None
        return Row(str(found.folder / found.stem), "failed", error=_line(found.failure, error))
    return Row(
        str(record.get("input") or found.folder / found.stem),
        "failed",
        model=str(record.get("model") or ""),
        error=" ".join(record["error"].split()),  # one line, whatever was recorded
        record=found.failure,
        warnings=["results of an earlier run are there"] if found.summary is not None else [],
    )


def _line(path: Path, error: Exception) -> str:
    reason = error.strerror if isinstance(error, OSError) else str(error)
    return f"{path}: cannot read ({reason})"


def _failed_summary(found: Found, summary: dict, error: str) -> Row:
    return Row(
        str(summary.get("input") or found.folder / found.stem),
        "failed",
        model=str(summary.get("model") or ""),
        error=error,
        record=found.summary,
    )


def _labels(summary: dict) -> tuple[tuple[str, ...], bool]:
    """The labels the summary's results give: EMOTIC's categories, else expression classes."""
    categories = summary.get("categories") or ()
    if categories:
        return tuple(map(str, categories)), True
    classes = summary.get("classes")
    if classes is None:
        classes = default_class_names(int(summary.get("nclass") or 0))
    return tuple(map(str, classes)), False


def _analysed(found: Found, summary: dict) -> list[Row]:
    labels, categories = _labels(summary)
    common = {
        "input": str(summary.get("input") or found.folder / found.stem),
        "status": "ok",
        "model": str(summary.get("model") or "emonet"),
        "categories": categories,
    }
    warnings = [" ".join(str(w).split()) for w in summary.get("warnings") or []]
    people = summary.get("people")
    outputs = [Path(str(p)).name for p in summary.get("outputs") or []]
    if people is None:
        path = found.folder / f"{found.stem}.csv"
        read = read_results_figures(path, labels, categories)
        expected = summary.get("frames")
        if isinstance(expected, int) and expected != read.figures.frames:
            warnings.append(f"{path.name} has {read.figures.frames} rows, the summary {expected}")
        return [
            Row(
                **common,
                figures=read.figures,
                people=1 if read.figures.faces else 0,
                warnings=warnings,
                csv=path,
                record=found.summary,
                files=_nova_files(found.folder, outputs),
                picture=read.picture,
            )
        ]
    person_rows = []
    pooled = Figures(labels)
    for person in people:
        name = str(person.get("person"))
        path = found.folder / f"{found.stem}.{name}.csv"
        read = read_results_figures(path, labels, categories)
        pooled.merge(read.figures)
        mine = [Path(str(p)).name for p in person.get("outputs") or []]
        person_rows.append(
            Row(
                **common,
                person=name,
                figures=read.figures,
                people=1,
                csv=path,
                record=found.summary,
                files=_nova_files(found.folder, mine),
                picture=read.picture,
            )
        )
    # The input's own row pools its people's rows; its frames with a face are those of
    # S.faces.csv, the overview of every person's faces.
    faces_csv = found.folder / f"{found.stem}{FACES_SUFFIX}"
    pooled.frames = max(pooled.frames, int(summary.get("frames") or 0))
    pooled.pooled_face_frames = _frames_in(faces_csv) if people else 0
    overview = Row(
        **common,
        figures=pooled,
        people=len(people),
        warnings=warnings,
        record=found.summary,
        files=[faces_csv] if faces_csv.exists() else [],
    )
    return [overview, *person_rows]


def _nova_files(folder: Path, names: list[str]) -> list[Path]:
    return [
        folder / name for name in names if name.endswith(NOVA_SUFFIXES) and (folder / name).exists()
    ]


def _frames_in(faces_csv: Path) -> int:
    """The frames with at least one face in `S.faces.csv` (rows in frame order)."""
    try:
        with open(faces_csv, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if "frame" not in header:
                raise FormatError(f"{faces_csv}: not a faces CSV (no column frame)")
            j = header.index("frame")
            frames, last = 0, None
            for row in reader:
                if row[j] != last:
                    frames, last = frames + 1, row[j]
            return frames
    except FileNotFoundError:
        raise FormatError(f"{faces_csv}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error, IndexError) as error:
        raise FormatError(f"{faces_csv}: cannot read ({error})") from None
