"""`report.html`: one self-contained page (its style, script and data inline; nothing fetched,
so it opens offline from anywhere) with the table of the inputs, sortable and filterable, and
per input the pictures its script draws on a click: the valence/arousal (and dominance)
timeline with the label band and the no-face spans, the circumplex, and the label shares.

Each CSV's picture is a few hundred bytes (figures.Picture), so a page of 1,000 inputs stays a
few megabytes, and only the picture of the selected input is drawn."""

from __future__ import annotations

import datetime
import html
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from emonet_cli import __version__
from emonet_cli.constants import default_class_colors
from emonet_cli.formats.fileio import atomic_open
from emonet_cli.formats.names import shown_name
from emonet_cli.outputs.results import DIMENSIONS
from emonet_cli.views.report.collect import Row
from emonet_cli.views.report.table import row_values

PAGE_NAME = "report.html"
DEFAULT_FEW_FACES = 0.5  # an input with a face in fewer of its frames is flagged
DEFAULT_FEW_USABLE = 0.5  # an input with fewer usable frames is flagged
FEW_FACES, FEW_USABLE = 1, 2  # a row's flags

# (index.csv column, heading, decimals shown; None: text)
TABLE_COLUMNS = (
    ("input", "input", None),
    ("person", "person", None),
    ("status", "status", None),
    ("model", "model", None),
    ("frames", "frames", 0),
    ("face_share", "face %", -1),  # -1: as a percentage
    ("usable_share", "usable %", -1),
    ("people", "people", 0),
    ("mean_valence", "valence", 3),
    ("mean_arousal", "arousal", 3),
    ("mean_dominance", "dominance", 3),
)


def _asset(name: str) -> str:
    return resources.files("emonet_cli.views.report").joinpath("assets", name).read_text("utf-8")


def _shown(value: str, decimals: int | None) -> str:
    if decimals is None or value == "":
        return value
    if decimals < 0:
        return f"{100 * float(value):.0f}%"
    return f"{float(value):.{decimals}f}" if decimals else value


def _href(path: Path, page_folder: Path) -> str:
    # The name's own bytes, percent-encoded: a link to a name that is not UTF-8 still works.
    return quote(os.fsencode(Path(os.path.relpath(path, page_folder)).as_posix()))


def _short_names(rows: Sequence[Row]) -> list[str]:
    """Each row's input as shown: its path without the folder all inputs share."""
    inputs = [row.input for row in rows]
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in inputs]) if inputs else ""
    except ValueError:  # relative and absolute paths mixed
        common = ""
    return [os.path.relpath(p, common) if common else p for p in inputs]


class LabelSets:
    """The label names (and colours) of the rows, each set stored once in the page's data."""

    def __init__(self):
        self.sets: list[dict] = []
        self._index: dict[tuple, int] = {}

    def index(self, labels: tuple[str, ...], categories: bool) -> int:
        key = (labels, categories)
        if key not in self._index:
            colors = ["#" + color[3:] for color in default_class_colors(labels)]
            kind = "category" if categories else "expression"
            self._index[key] = len(self.sets)
            self.sets.append({"names": list(labels), "colors": colors, "kind": kind})
        return self._index[key]


def _row_data(i: int, row: Row, parent: int | None, page_folder: Path, sets: LabelSets) -> dict:
    data: dict = {"i": i}
    if parent is not None:
        data["parent"] = parent
    links = []
    if row.csv is not None:
        links.append([row.csv.name, _href(row.csv, page_folder)])
    if row.record is not None:
        links.append([row.record.name, _href(row.record, page_folder)])
    links += [[path.name, _href(path, page_folder)] for path in row.files]
    data["links"] = links
    if row.figures is not None:
        figures = row.figures
        data["labels"] = sets.index(figures.labels, row.categories)
        data["shares"] = [round(share, 4) for share in figures.shares().values()]
        data["std"] = {name: m.std for name, m in figures.dimensions.items()}
        data["dims"] = [name for name in DIMENSIONS if name in figures.dimensions]
    if row.picture is not None:
        data["picture"] = row.picture
    return data


def _json_for_script(document) -> str:
    text = json.dumps(document, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _clean(value):
    """NaN (a figure without data) as null: JSON has no NaN; a name's bytes that are not
    UTF-8 as `\\xNN`, as the page shows them (see formats/names.py)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str):
        return shown_name(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_page(
    rows: Sequence[Row],
    path: Path,
    results: Path,
    few_faces: float = DEFAULT_FEW_FACES,
    few_usable: float = DEFAULT_FEW_USABLE,
) -> Path:
    """Write the report page of `rows` (as `collect.rows_of` made them) to `path`, its
    links relative to its folder; written atomically. Inputs with a face in fewer than
    `few_faces` of their frames, or fewer than `few_usable` usable frames, are flagged."""
    page_folder = path.resolve().parent
    sets = LabelSets()
    shown = _short_names(rows)
    body: list[str] = []
    data: list[dict] = []
    parent = None
    counts = {"ok": 0, "failed": 0, "few": 0, "fewusable": 0}
    for i, row in enumerate(rows):
        parent = parent if row.person else i
        values = row_values(row, results)
        few = FEW_FACES * bool(
            row.status == "ok"
            and values["face_share"] != ""
            and float(values["face_share"]) < few_faces
        )
        few_usable_frames = bool(
            row.status == "ok"
            and values.get("usable_share", "") != ""
            and float(values["usable_share"]) < few_usable
        )
        if few_usable_frames:
            few = few | FEW_USABLE
        if not row.person:
            counts[row.status] = counts.get(row.status, 0) + 1
            counts["few"] += bool(few & FEW_FACES)
            counts["fewusable"] += few_usable_frames
        data.append(_clean(_row_data(i, row, parent if row.person else None, page_folder, sets)))
        where = Path(values["record"]).parent.as_posix() if values["record"] else "."
        name = html.escape(shown[i])
        if where != ".":
            name += f" <small>in {html.escape(where)}/</small>"
        body.append(_table_row(i, row, values, name, few, parent if row.person else None))
    inputs = counts["ok"] + counts["failed"]
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"emonet report: {results.name or results}"
    heading = (
        f"{inputs} inputs: {counts['ok']} analysed, "
        f'<span class="chip {"failed" if counts["failed"] else "none"}">'
        f"{counts['failed']} failed</span> "
        f'<span class="chip {"few" if counts["few"] else "none"}">{counts["few"]} with a face '
        f"in under {100 * few_faces:.0f}% of frames</span> "
        f'<span class="chip {"fewusable" if counts["fewusable"] else "none"}">'
        f"{counts['fewusable']} with under {100 * few_usable:.0f}% usable frames</span>"
    )
    document = {"labelsets": sets.sets, "rows": data, "few": few_faces, "fewusable": few_usable}
    page = _asset("report.html").format(
        title=html.escape(title),
        style=_asset("report.css"),
        script=_asset("report.js"),
        folder=html.escape(str(results)),
        heading=heading,
        generated=html.escape(f"{generated}, emonet-cli {__version__}"),
        head="".join(
            f'<th data-col="{col}" data-kind="{"text" if d is None else "number"}">'
            f"{html.escape(name)}</th>"
            for col, name, d in TABLE_COLUMNS
        ),
        rows="\n".join(body),
        data=_json_for_script(document),
    )
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(shown_name(page))  # names in its text as the data shows them
    return path


def _table_row(
    i: int, row: Row, values: dict[str, str], name: str, few: int, parent: int | None
) -> str:
    """A `<tr>`; `name` is the input as shown (HTML), each cell's data-v its index.csv value;
    `few` the flags FEW_FACES and FEW_USABLE."""
    classes = [row.status]
    if few & FEW_FACES:
        classes.append("few")
    if few & FEW_USABLE:
        classes.append("fewusable")
    if parent is not None:
        classes.append("person")
    where = values["record"]
    search = " ".join([row.input, where, row.person, row.status, row.model, row.error])
    search += " " + " ".join(row.warnings)
    cells = []
    for col, _, decimals in TABLE_COLUMNS:
        value = values.get(col, "")
        text = html.escape(_shown(value, decimals))
        if col == "input":
            text = name if parent is None else "&#8627;"
            if row.warnings:
                warnings = html.escape(values["warnings"])
                text += f' <span class="chip warn" title="{warnings}">!</span>'
        elif col == "status":
            flags = f'<span class="chip {row.status}">{text}</span>'
            if few & FEW_FACES:
                flags += ' <span class="chip few">few faces</span>'
            if few & FEW_USABLE:
                flags += ' <span class="chip fewusable">few usable</span>'
            text = flags
        title = f' title="{html.escape(row.error)}"' if col == "status" and row.error else ""
        cells.append(f'<td data-col="{col}" data-v="{html.escape(value)}"{title}>{text}</td>')
    attributes = f'data-i="{i}" class="{" ".join(classes)}" data-search="{html.escape(search)}"'
    if parent is not None:
        attributes += f' data-parent="{parent}"'
    return f"<tr {attributes}>{''.join(cells)}</tr>"
