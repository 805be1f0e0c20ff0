"""SSI streams: an XML header `NAME.stream` and its data file `NAME.stream~`.

The format is the one written by SSI and by DISCOVER (hcai-discover-utils): BINARY data is
little-endian rows of `dim` values, ASCII data is one row per line split by `delim`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.formats.fileio import (
    NOT_A_REGULAR_FILE,
    HeaderAndDataWriter,
    PendingFile,
    pending_text,
    unreadable_reason,
)
from emonet_cli.formats.names import shown_name

# SSI type name -> the numpy types it may be stored as; the `byte` attribute picks one.
# The first is what we write. SSI's LONG is a C long: 4 bytes where SSI runs (Windows),
# 8 bytes in DISCOVER's files.
SSI_TYPES: dict[str, tuple[np.dtype, ...]] = {
    "SHORT": (np.dtype("<i2"),),
    "USHORT": (np.dtype("<u2"),),
    "INT": (np.dtype("<i4"),),
    "UINT": (np.dtype("<u4"),),
    "LONG": (np.dtype("<i8"), np.dtype("<i4")),
    "ULONG": (np.dtype("<u8"), np.dtype("<u4")),
    "FLOAT": (np.dtype("<f4"),),
    "DOUBLE": (np.dtype("<f8"),),
    "BOOL": (np.dtype("?"),),
}
FILE_TYPES = ("BINARY", "ASCII")
STREAM_SUFFIX = ".stream"
ASCII_DELIM = " "


@dataclass
class SSIStream:
    """The samples of one SSI stream, in file order, with its header fields."""

    data: np.ndarray
    sr: float
    ftype: str
    type: str
    meta: dict[str, str]
    path: Path

    @property
    def duration(self) -> float:
        """Seconds covered by the samples."""
        return len(self.data) / self.sr


def data_path(header: Path) -> Path:
    """The data file that belongs to an SSI/NOVA header: the header's name plus `~`."""
    return header.with_name(header.name + "~")


def with_suffix_added(path: str | Path, suffix: str) -> Path:
    """`path` ending in `suffix`, appending it when missing (as SSI does for its files)."""
    path = Path(path)
    return path if path.name.endswith(suffix) else path.with_name(path.name + suffix)


def format_float(value: float) -> str:
    """The shortest text that reads back as the same value of the value's own float type,
    without exponent, and without a fractional part when there is none ("25", not "25.0",
    which some locales misread). NaN is spelled `NaN`, the only spelling NOVA (.NET) parses."""
    if math.isnan(value):
        return "NaN"
    return np.format_float_positional(value, unique=True, trim="-")


def parse_header(path: Path, root_tag: str) -> ET.Element:
    """The root element of an XML header, or FormatError naming the file."""
    _refuse_special_file(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as error:
        raise FormatError(f"{path}: cannot read the header ({error.strerror})") from None
    except ET.ParseError as error:
        raise FormatError(f"{path}: malformed XML ({error})") from None
    if root.tag != root_tag:
        raise FormatError(f"{path}: expected a <{root_tag}> header, found <{root.tag}>")
    return root


def _refuse_special_file(path: Path) -> None:
    # Reading a FIFO would wait for a writer forever; a device or a folder is no SSI file.
    if unreadable_reason(path) == NOT_A_REGULAR_FILE:
        raise FormatError(f"{path}: {NOT_A_REGULAR_FILE}")


def header_path(path: Path, suffix: str) -> Path:
    """The XML header of an SSI/NOVA file pair, given either the header or its `~` data file."""
    path = Path(path)
    return path.with_name(path.name[:-1]) if path.name.endswith(suffix + "~") else path


def info_element(header: Path, root: ET.Element) -> tuple[ET.Element, str]:
    """The header's <info> element and its checked ftype (BINARY or ASCII)."""
    info = root.find("info")
    if info is None:
        raise FormatError(f"{header}: no <info> element")
    ftype = required_attribute(header, info, "ftype")
    if ftype not in FILE_TYPES:
        raise FormatError(f"{header}: unknown ftype '{ftype}' (expected BINARY or ASCII)")
    return info, ftype


def required_attribute(path: Path, element: ET.Element, name: str) -> str:
    """An attribute that the format requires, or FormatError naming the file."""
    value = element.get(name)
    if value is None:
        raise FormatError(f"{path}: <{element.tag}> has no '{name}' attribute")
    return value


def number_attribute(path: Path, element: ET.Element, name: str, kind: type = float) -> float | int:
    """A required numeric attribute parsed as `kind` (float or int)."""
    text = required_attribute(path, element, name)
    try:
        return kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise FormatError(f'{path}: <{element.tag} {name}="{text}"> is not {expected}') from None


def sample_rate_attribute(path: Path, element: ET.Element) -> float:
    """The required `sr` attribute, which must be a positive number."""
    sr = number_attribute(path, element, "sr")
    if not (math.isfinite(sr) and sr > 0):
        raise FormatError(f'{path}: sample rate sr="{sr}" is not positive')
    return sr


def read_data_bytes(path: Path) -> bytes:
    """The whole data file, or FormatError naming it when it is missing or unreadable."""
    _refuse_special_file(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: data file is missing") from None
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error.strerror})") from None


def header_text(root: ET.Element) -> str:
    """An indented XML header, as SSI and NOVA write them; a file name's bytes that are not
    UTF-8 (in a role or description) as `\\xNN` (see formats/names.py)."""
    ET.indent(root, space="    ")
    text = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + shown_name(text) + "\n"


def pending_header(path: Path, root: ET.Element) -> PendingFile:
    """The header, written out but not yet under its name (see PendingFile)."""
    return pending_text(path, header_text(root))


def _stream_dtype(path: Path, type_name: str, byte: int) -> np.dtype:
    if type_name not in SSI_TYPES:
        known = ", ".join(SSI_TYPES)
        raise FormatError(f"{path}: unknown sample type '{type_name}' (known: {known})")
    for dtype in SSI_TYPES[type_name]:
        if dtype.itemsize == byte:
            return dtype
    raise FormatError(f'{path}: type {type_name} cannot be stored in byte="{byte}"')


def _parse_integer(path: Path, token: str) -> int:
    try:
        return int(token)
    except ValueError:
        pass
    # Some writers (numpy.savetxt in DISCOVER) print integers as floats, e.g. 1.0e+00.
    value = _parse_float(path, token)
    if not value.is_integer():
        raise FormatError(f"{path}: '{token}' is not an integer")
    return int(value)


def _parse_float(path: Path, token: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise FormatError(f"{path}: '{token}' is not a number") from None


def _parse_ascii_values(path: Path, tokens: list[str], dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return np.array([_parse_float(path, t) for t in tokens], dtype=np.float64).astype(dtype)
    integers = [_parse_integer(path, t) for t in tokens]
    if dtype.kind == "b":
        return np.array(integers) != 0
    try:
        return np.array(integers, dtype=dtype)
    except OverflowError:
        raise FormatError(f"{path}: a value is out of range for {dtype.name}") from None


def _read_ascii(path: Path, raw: bytes, dim: int, delim: str, dtype: np.dtype) -> np.ndarray:
    try:
        lines = [line for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise FormatError(f"{path}: ASCII data is not text") from None
    tokens: list[str] = []
    for number, line in enumerate(lines, start=1):
        # A blank delimiter means any run of whitespace, as C's fscanf reads it.
        row = line.split() if not delim.strip() else [t.strip() for t in line.split(delim)]
        if len(row) != dim:
            raise FormatError(f"{path}: row {number} has {len(row)} values, expected {dim}")
        tokens.extend(row)
    return _parse_ascii_values(path, tokens, dtype).reshape(len(lines), dim)


def _read_binary(path: Path, raw: bytes, num: int, dim: int, dtype: np.dtype) -> np.ndarray:
    expected = num * dim * dtype.itemsize
    if len(raw) < expected:
        raise FormatError(
            f"{path}: truncated: {len(raw)} bytes, but {num} samples of {dim} x "
            f"{dtype.itemsize} bytes need {expected}"
        )
    if len(raw) > expected:
        raise FormatError(
            f"{path}: holds {len(raw)} bytes, more than the {expected} its chunks declare "
            f"({num} samples)"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(num, dim).copy()


def read_stream(path: str | Path) -> SSIStream:
    """Read an SSI stream from its header `X.stream` (or its data file `X.stream~`).

    Samples are read in file order, as SSI writes chunks back to back; chunk times and byte
    offsets are not used (DISCOVER documents `byte` as a size, SSI as an offset).
    """
    header = header_path(path, STREAM_SUFFIX)
    root = parse_header(header, "stream")
    if root.get("ssi-v", "2").strip() == "1":
        raise FormatError(f"{header}: SSI stream version 1 is not supported")

    info, ftype = info_element(header, root)
    sr = sample_rate_attribute(header, info)
    dim = number_attribute(header, info, "dim", int)
    byte = number_attribute(header, info, "byte", int)
    type_name = required_attribute(header, info, "type")
    if dim <= 0:
        raise FormatError(f'{header}: dim="{dim}" is not positive')
    dtype = _stream_dtype(header, type_name, byte)

    chunk_sizes = [number_attribute(header, c, "num", int) for c in root.iter("chunk")]
    if any(num < 0 for num in chunk_sizes):
        raise FormatError(f"{header}: a <chunk> has a negative num")
    num = sum(chunk_sizes)
    if num == 0:
        raise FormatError(f"{header}: empty stream: its chunks hold no samples")

    data_file = data_path(header)
    raw = read_data_bytes(data_file)
    if ftype == "BINARY":
        data = _read_binary(data_file, raw, num, dim, dtype)
    else:
        data = _read_ascii(data_file, raw, dim, info.get("delim", ASCII_DELIM), dtype)
        if len(data) != num:
            raise FormatError(
                f"{data_file}: holds {len(data)} samples, but its chunks declare {num}"
            )
    meta_element = root.find("meta")
    meta = dict(meta_element.attrib) if meta_element is not None else {}
    return SSIStream(
        data=data.astype(dtype.newbyteorder("="), copy=False),
        sr=sr,
        ftype=ftype,
        type=type_name,
        meta=meta,
        path=header,
    )


def check_sample_rate(sr: float) -> None:
    """ValueError unless `sr` is a positive number."""
    if not (math.isfinite(sr) and sr > 0):
        raise ValueError(f"sample rate must be positive, not {sr!r}")


def ascii_rows(columns: list[np.ndarray], delim: str) -> str:
    """Rows of text, one value of each column per row, numbers in the fewest digits that read
    back exactly."""
    return "".join(delim.join(row) + "\n" for row in zip(*map(_ascii_cells, columns)))


def _ascii_cells(column: np.ndarray) -> list[str]:
    if column.dtype.kind == "f":
        return [format_float(value) for value in column]
    if column.dtype.kind == "b":
        column = column.astype(np.uint8)
    return [str(value) for value in column.tolist()]


class StreamWriter(HeaderAndDataWriter):
    """Writes a one-chunk SSI stream batch by batch. The data file `X.stream~` and then the
    header `X.stream` appear only on close(); abort() leaves nothing."""

    def __init__(
        self,
        path: str | Path,
        dim: int,
        sr: float,
        ftype: str = "BINARY",
        type: str = "FLOAT",
        meta: dict | None = None,
    ):
        if ftype not in FILE_TYPES:
            raise ValueError(f"ftype must be BINARY or ASCII, not {ftype!r}")
        if type not in SSI_TYPES:
            raise ValueError(f"unknown SSI type {type!r}; known: {', '.join(SSI_TYPES)}")
        check_sample_rate(sr)
        if dim <= 0:
            raise ValueError(f"dim must be positive, not {dim}")
        self.header = with_suffix_added(path, STREAM_SUFFIX)
        self.paths = [self.header, data_path(self.header)]
        self.dim, self.sr, self.ftype, self.type = dim, float(sr), ftype, type
        self.meta = {str(k): str(v) for k, v in (meta or {}).items()}
        self._dtype = SSI_TYPES[type][0]
        self._count = 0
        self._data = PendingFile(data_path(self.header), binary=ftype == "BINARY")
        self._header: PendingFile | None = None

    def append(self, samples: np.ndarray) -> None:
        """Add samples, shaped (n, dim)."""
        samples = np.asarray(samples).astype(self._dtype)
        if samples.ndim != 2 or samples.shape[1] != self.dim:
            raise ValueError(f"samples must be shaped (n, {self.dim}), not {samples.shape}")
        if self.ftype == "BINARY":
            self._data.file.write(samples.tobytes())
        else:
            self._data.file.write(ascii_rows(list(samples.T), ASCII_DELIM))
        self._count += len(samples)

    def finish(self) -> None:
        """Write everything out, data and header, without publishing (see PendingFile)."""
        if self._count == 0:
            self.abort()
            raise ValueError(
                f"{self.header}: no samples to write; SSI readers refuse empty streams"
            )
        self._data.finish()
        root = ET.Element("stream", {"ssi-v": "2"})
        info = {
            "ftype": self.ftype,
            "sr": format_float(self.sr),
            "dim": str(self.dim),
            "byte": str(self._dtype.itemsize),
            "type": self.type,
        }
        if self.ftype == "ASCII":
            info["delim"] = ASCII_DELIM
        ET.SubElement(root, "info", info)
        if self.meta:
            ET.SubElement(root, "meta", self.meta)
        end = format_float(self._count / self.sr)
        ET.SubElement(root, "chunk", {"from": "0", "to": end, "byte": "0", "num": str(self._count)})
        self._header = pending_header(self.header, root)


def write_stream(
    path: str | Path,
    data: np.ndarray,
    sr: float,
    ftype: str = "BINARY",
    type: str = "FLOAT",
    meta: dict | None = None,
) -> Path:
    """Write `data` (samples x dim) as a one-chunk SSI stream; returns the header path.

    `.stream` is appended to `path` when missing. ASCII values are written with the fewest
    digits that read back exactly.
    """
    samples = np.asarray(data)
    if samples.ndim != 2 or samples.shape[1] == 0:
        raise ValueError(f"stream data must be a (samples, dim) array, not {samples.shape}")
    writer = StreamWriter(path, samples.shape[1], sr, ftype=ftype, type=type, meta=meta)
    try:
        writer.append(samples)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
