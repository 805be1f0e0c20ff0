"""NOVA annotations: an XML header `NAME.annotation` and its data file `NAME.annotation~`.

Discrete rows are `from;to;id;conf` (seconds; BINARY float64, float64, int32, float32),
continuous rows are `score;conf` (BINARY float32, float32) at the scheme's sample rate.
Samples without a face follow NOVA's garbage conventions: discrete id -1, continuous score
NaN, confidence 0.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.formats.fileio import HeaderAndDataWriter, PendingFile
from emonet_cli.formats.streams import (
    FILE_TYPES,
    ascii_rows,
    check_sample_rate,
    data_path,
    format_float,
    header_path,
    info_element,
    number_attribute,
    parse_header,
    pending_header,
    read_data_bytes,
    required_attribute,
    sample_rate_attribute,
    with_suffix_added,
)

ANNOTATION_SUFFIX = ".annotation"
GARBAGE_ID = -1
DISCRETE_DTYPE = np.dtype([("from", "<f8"), ("to", "<f8"), ("id", "<i4"), ("conf", "<f4")])
CONTINUOUS_DTYPE = np.dtype([("score", "<f4"), ("conf", "<f4")])
DEFAULT_ITEM_COLOR = "#FF000000"
DEFAULT_MAX_COLOR = "#FF4682B4"
DEFAULT_MIN_COLOR = "#FFFFFFFF"
COLOR_PATTERN = re.compile(r"#[0-9A-Fa-f]{8}")


@dataclass
class DiscreteScheme:
    """Class names, in id order, and their NOVA colours."""

    name: str
    classes: list[str]
    colors: list[str]  # "#AARRGGBB", one per class


@dataclass
class ContinuousScheme:
    """A score sampled at `sr` Hz within [min, max]. NOVA shades the score from `min_color`
    at `min` to `color` at `max` (its mincolor and maxcolor)."""

    name: str
    sr: float
    min: float = -1.0
    max: float = 1.0
    color: str = DEFAULT_MAX_COLOR
    min_color: str = DEFAULT_MIN_COLOR


@dataclass
class Annotation:
    """An annotation as read from disk; `data` has DISCRETE_DTYPE or CONTINUOUS_DTYPE."""

    scheme: DiscreteScheme | ContinuousScheme
    data: np.ndarray
    role: str
    annotator: str
    description: str
    ftype: str
    path: Path


def _check_colors(colors: list[str]) -> None:
    for color in colors:
        if not COLOR_PATTERN.fullmatch(color):
            raise ValueError(f"colour {color!r} is not of the form #AARRGGBB")


def _rows(dtype: np.dtype, **columns: np.ndarray) -> np.ndarray:
    shapes = {name: np.shape(values) for name, values in columns.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1:
        raise ValueError(f"annotation columns must be 1-D and of equal length, got {shapes}")
    rows = np.empty(len(next(iter(columns.values()))), dtype=dtype)
    for name, values in columns.items():
        rows[name] = values
    return rows


class _AnnotationWriter(HeaderAndDataWriter):
    """Writes rows batch by batch; the data file `X.annotation~` and then the header
    `X.annotation` appear only on close(), abort() leaves nothing."""

    def __init__(
        self,
        path: str | Path,
        scheme: ET.Element,
        ftype: str,
        role: str,
        annotator: str,
        description: str,
    ):
        if ftype not in FILE_TYPES:
            raise ValueError(f"ftype must be BINARY or ASCII, not {ftype!r}")
        self.header = with_suffix_added(path, ANNOTATION_SUFFIX)
        self.paths = [self.header, data_path(self.header)]
        self.ftype = ftype
        self._scheme = scheme
        self._meta = {"role": role, "annotator": annotator, "description": description}
        self._count = 0
        self._data = PendingFile(data_path(self.header), binary=ftype == "BINARY")
        self._header: PendingFile | None = None

    def _write_rows(self, rows: np.ndarray) -> None:
        if self.ftype == "BINARY":
            self._data.file.write(rows.tobytes())
        else:
            self._data.file.write(ascii_rows([rows[name] for name in rows.dtype.names], ";"))
        self._count += len(rows)

    def finish(self) -> None:
        """Write everything out, data and header, without publishing (see PendingFile)."""
        self._data.finish()
        root = ET.Element("annotation", {"ssi-v": "3"})
        ET.SubElement(root, "info", {"ftype": self.ftype, "size": str(self._count)})
        ET.SubElement(root, "meta", self._meta)
        root.append(self._scheme)
        self._header = pending_header(self.header, root)


class DiscreteAnnotationWriter(_AnnotationWriter):
    """A discrete NOVA annotation written batch by batch (see _AnnotationWriter)."""

    def __init__(
        self,
        path: str | Path,
        scheme: DiscreteScheme,
        *,
        ftype: str = "ASCII",
        role: str = "emonet",
        annotator: str = "emonet",
        description: str = "",
    ):
        if len(scheme.colors) != len(scheme.classes):
            raise ValueError(f"{len(scheme.classes)} classes but {len(scheme.colors)} colours")
        _check_colors(scheme.colors)
        element = ET.Element("scheme", {"name": scheme.name, "type": "DISCRETE"})
        for class_id, (name, color) in enumerate(zip(scheme.classes, scheme.colors)):
            ET.SubElement(element, "item", {"name": name, "id": str(class_id), "color": color})
        self.class_count = len(scheme.classes)
        super().__init__(path, element, ftype, role, annotator, description)

    def append(self, start: np.ndarray, end: np.ndarray, ids: np.ndarray, conf: np.ndarray) -> None:
        """Add labels `ids` (GARBAGE_ID for none) over [start, end) seconds."""
        rows = _rows(DISCRETE_DTYPE, **{"from": start, "to": end, "id": ids, "conf": conf})
        if not np.all(np.isfinite(rows["from"]) & np.isfinite(rows["to"])):
            raise ValueError("start and end times must be finite")
        if np.any(rows["to"] < rows["from"]):
            raise ValueError("a label ends before it starts")
        if not np.all(np.isfinite(rows["conf"])):
            raise ValueError("confidences must be finite")
        valid = (rows["id"] >= GARBAGE_ID) & (rows["id"] < self.class_count)
        if np.any(np.asarray(ids) != rows["id"]) or not np.all(valid):
            raise ValueError(f"class ids must be integers in {GARBAGE_ID}..{self.class_count - 1}")
        self._write_rows(rows)


class ContinuousAnnotationWriter(_AnnotationWriter):
    """A continuous NOVA annotation written batch by batch (see _AnnotationWriter)."""

    def __init__(
        self,
        path: str | Path,
        scheme: ContinuousScheme,
        *,
        ftype: str = "ASCII",
        role: str = "emonet",
        annotator: str = "emonet",
        description: str = "",
    ):
        check_sample_rate(scheme.sr)
        _check_colors([scheme.color, scheme.min_color])
        element = ET.Element(
            "scheme",
            {
                "name": scheme.name,
                "type": "CONTINUOUS",
                "sr": format_float(float(scheme.sr)),
                "min": format_float(float(scheme.min)),
                "max": format_float(float(scheme.max)),
                "mincolor": scheme.min_color,
                "maxcolor": scheme.color,
            },
        )
        super().__init__(path, element, ftype, role, annotator, description)

    def append(self, score: np.ndarray, conf: np.ndarray) -> None:
        """Add one score per sample (NaN for none) with its confidence."""
        rows = _rows(CONTINUOUS_DTYPE, score=score, conf=conf)
        if np.any(np.isinf(rows["score"])):
            raise ValueError("scores must be finite or NaN")
        if not np.all(np.isfinite(rows["conf"])):
            raise ValueError("confidences must be finite")
        self._write_rows(rows)


def _write_all(writer: _AnnotationWriter, *columns: np.ndarray) -> Path:
    try:
        writer.append(*columns)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def write_discrete_annotation(
    path: str | Path,
    scheme: DiscreteScheme,
    start: np.ndarray,
    end: np.ndarray,
    ids: np.ndarray,
    conf: np.ndarray,
    *,
    ftype: str = "ASCII",
    role: str = "emonet",
    annotator: str = "emonet",
    description: str = "",
) -> Path:
    """Write labels `ids` (GARBAGE_ID for none) over [start, end) seconds; returns the header
    path (`.annotation` is appended when missing)."""
    meta = {"role": role, "annotator": annotator, "description": description}
    writer = DiscreteAnnotationWriter(path, scheme, ftype=ftype, **meta)
    return _write_all(writer, start, end, ids, conf)


def write_continuous_annotation(
    path: str | Path,
    scheme: ContinuousScheme,
    score: np.ndarray,
    conf: np.ndarray,
    *,
    ftype: str = "ASCII",
    role: str = "emonet",
    annotator: str = "emonet",
    description: str = "",
) -> Path:
    """Write one score per sample at `scheme.sr` (NaN for none); returns the header path
    (`.annotation` is appended when missing)."""
    meta = {"role": role, "annotator": annotator, "description": description}
    writer = ContinuousAnnotationWriter(path, scheme, ftype=ftype, **meta)
    return _write_all(writer, score, conf)


def _read_discrete_scheme(header: Path, element: ET.Element) -> DiscreteScheme:
    items = element.findall("item")
    by_id = {}
    for item in items:
        class_id = number_attribute(header, item, "id", int)
        by_id[class_id] = item
    if sorted(by_id) != list(range(len(items))):
        raise FormatError(f"{header}: item ids must be 0..{len(items) - 1}, found {list(by_id)}")
    ordered = [by_id[class_id] for class_id in range(len(items))]
    return DiscreteScheme(
        name=element.get("name", ""),
        classes=[required_attribute(header, item, "name") for item in ordered],
        colors=[item.get("color", DEFAULT_ITEM_COLOR) for item in ordered],
    )


def _read_continuous_scheme(header: Path, element: ET.Element) -> ContinuousScheme:
    sr = sample_rate_attribute(header, element)
    return ContinuousScheme(
        name=element.get("name", ""),
        sr=sr,
        min=number_attribute(header, element, "min"),
        max=number_attribute(header, element, "max"),
        color=element.get("maxcolor", DEFAULT_MAX_COLOR),
        # NOVA reads `color` before `mincolor`.
        min_color=element.get("color", element.get("mincolor", DEFAULT_MIN_COLOR)),
    )


def _read_ascii_rows(path: Path, raw: bytes, dtype: np.dtype) -> np.ndarray:
    try:
        lines = [line for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise FormatError(f"{path}: ASCII data is not text") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        cells = line.split(";")
        if len(cells) != len(dtype.names):
            raise FormatError(
                f"{path}: row {number} has {len(cells)} fields, expected {len(dtype.names)}"
            )
        try:
            rows.append(
                tuple(
                    int(cell) if dtype[name].kind == "i" else float(cell)
                    for name, cell in zip(dtype.names, cells)
                )
            )
        except ValueError:
            raise FormatError(f"{path}: row {number} cannot be read: '{line}'") from None
    return np.array(rows, dtype=dtype)


def _read_binary_rows(path: Path, raw: bytes, dtype: np.dtype) -> np.ndarray:
    if len(raw) % dtype.itemsize:
        raise FormatError(
            f"{path}: truncated: {len(raw)} bytes is not a whole number of "
            f"{dtype.itemsize}-byte rows"
        )
    return np.frombuffer(raw, dtype=dtype).copy()


def read_annotation(path: str | Path) -> Annotation:
    """Read a discrete or continuous NOVA annotation from `X.annotation` (or `X.annotation~`)."""
    header = header_path(path, ANNOTATION_SUFFIX)
    root = parse_header(header, "annotation")
    info, ftype = info_element(header, root)
    size = number_attribute(header, info, "size", int)
    element = root.find("scheme")
    if element is None:
        raise FormatError(f"{header}: no <scheme> element")
    scheme_type = element.get("type")
    scheme: DiscreteScheme | ContinuousScheme
    if scheme_type == "DISCRETE":
        scheme, dtype = _read_discrete_scheme(header, element), DISCRETE_DTYPE
    elif scheme_type == "CONTINUOUS":
        scheme, dtype = _read_continuous_scheme(header, element), CONTINUOUS_DTYPE
    else:
        raise FormatError(
            f"{header}: scheme type '{scheme_type}' is not supported (DISCRETE or CONTINUOUS)"
        )

    data_file = data_path(header)
    raw = read_data_bytes(data_file)
    if ftype == "BINARY":
        rows = _read_binary_rows(data_file, raw, dtype)
    else:
        rows = _read_ascii_rows(data_file, raw, dtype)
    if len(rows) != size:
        raise FormatError(f"{data_file}: holds {len(rows)} rows, but the header says size={size}")
    if isinstance(scheme, DiscreteScheme):
        unknown = (rows["id"] < GARBAGE_ID) | (rows["id"] >= len(scheme.classes))
        if np.any(unknown):
            row = int(np.flatnonzero(unknown)[0])
            raise FormatError(f"{data_file}: row {row + 1} has unknown class id {rows['id'][row]}")

    meta = root.find("meta")
    meta_attributes = meta.attrib if meta is not None else {}
    return Annotation(
        scheme=scheme,
        data=rows,
        role=meta_attributes.get("role", ""),
        annotator=meta_attributes.get("annotator", ""),
        description=meta_attributes.get("description", ""),
        ftype=ftype,
        path=header,
    )
