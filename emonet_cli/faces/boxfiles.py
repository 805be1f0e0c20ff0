"""Face boxes from any supported source, as pixel corners plus a confidence per sample.

Files:
- an SSI stream from DISCOVER's BlazeFace module (`.stream`): per sample `ymin, xmin, ymax,
  xmax[, confidence]` normalised to the frame height and width;
- a CSV (`.csv`) with header `frame,x1,y1,x2,y2[,conf]` in pixels, or with a `face` column
  for several people (`frame,face,x1,y1,x2,y2[,conf]`, one row per face and frame; a `time`
  column, as in the `S.faces.csv` an analysis writes, is read and ignored);
- anything else: a whitespace list `IMAGE_PATH x1 y1 x2 y2` in pixels, one image per line.

Confidence 0 means the sample has no fresh detection: from BlazeFace the box is then the last
good one, repeated (or the whole frame before the first face). Frames missing from a CSV have
no row at all: CSV boxes stay sparse, so memory follows the rows, not the largest frame number,
and a frame number above MAX_FRAME_NUMBER is refused as a mistake (epoch milliseconds or
seconds in the frame column). Boxes are finite.

One rule for every source (these files and boxes handed over in memory): a box that is empty
or inverted (x2 <= x1 or y2 <= y1) is read, and means no face for its frame
(`face.FrameFace.usable`); `FaceBoxes.empty_or_inverted` finds such boxes so that the
input's warnings can count them, since they usually mean x, y, width, height where corners
were expected.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.faces.detection.boxstream import keypoint_stream_path
from emonet_cli.faces.on_frame import check_declared_size, declared_size
from emonet_cli.formats.fileio import unreadable_reason
from emonet_cli.formats.streams import STREAM_SUFFIX, read_stream

CSV_SUFFIX = ".csv"
# Box files that belong to one input NAME.ext as NAME.stream or NAME.csv, in order of preference.
BOX_FILE_SUFFIXES = (STREAM_SUFFIX, CSV_SUFFIX)
CSV_COLUMNS = ("frame", "x1", "y1", "x2", "y2")
CSV_CONF_COLUMN = "conf"
CSV_FACE_COLUMN = "face"
CSV_OPTIONAL_COLUMNS = (CSV_CONF_COLUMN, CSV_FACE_COLUMN, "time", "identity_distance")
# Eleven days of video at 1,000 fps: larger "frame numbers" are timestamps in the wrong column.
MAX_FRAME_NUMBER = 10**9


@dataclass
class FaceBoxes:
    """One box and confidence per sample (video frame, stream sample or listed image)."""

    boxes: np.ndarray  # (n, 4) float64 x1, y1, x2, y2 in frame pixels
    conf: np.ndarray  # (n,) float32
    sr: float | None  # samples per second for SSI streams; None for CSV frames and image lists
    images: list[str] | None  # image path of each sample, as written, for image lists
    source: Path
    # (n,) increasing frame numbers of the rows, for CSV boxes; None: row i is sample i
    frames: np.ndarray | None = None
    # (n, 6, 2) BlazeFace's keypoints x, y in frame pixels, from the keypoint stream beside
    # a DISCOVER box stream (X.keypoints.stream beside X.stream); None without one
    keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    def row(self, sample: int) -> int | None:
        """The row of a sample (a frame, a stream sample or a listed image), None without one."""
        if self.frames is None:
            return sample if 0 <= sample < len(self.boxes) else None
        row = int(np.searchsorted(self.frames, sample))
        return row if row < len(self.frames) and self.frames[row] == sample else None

    def empty_or_inverted(self) -> np.ndarray:
        """(n,) bool: rows with a detection (confidence above 0) whose box has no area."""
        return (self.conf > 0) & ~box_has_area(self.boxes)


def box_has_area(boxes: np.ndarray) -> np.ndarray:
    """Whether boxes (..., 4) x1, y1, x2, y2 enclose an area: x2 > x1 and y2 > y1. The rest
    are empty or inverted, and mean no face."""
    boxes = np.asarray(boxes)
    return (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])


def read_box_file(
    path: str | Path, frame_size: tuple[int, int] | None = None
) -> dict[int | None, FaceBoxes]:
    """The one reader of box files, chosen by file extension: the boxes of every person in
    it, {face number: boxes} for a CSV with a face column, else {None: boxes} (one unnamed
    person).

    `frame_size` (width, height) scales the normalised coordinates of SSI streams; the pixel
    sources ignore it. CSV rows may come in any order and skip frames: the result holds the
    rows present, sorted by frame (`FaceBoxes.frames`).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(STREAM_SUFFIX) or name.endswith(STREAM_SUFFIX + "~"):
        if frame_size is None:
            raise ValueError(f"{path}: normalised SSI boxes need frame_size=(width, height)")
        stream = read_stream(path)
        check_declared_size(stream.path, declared_size(stream.meta.get("size")), frame_size)
        boxes = boxes_from_normalised(stream.data, stream.sr, frame_size, stream.path)
        boxes.keypoints = keypoints_beside(stream.path, len(boxes), frame_size)
        return {None: boxes}
    text = _read_text(path)
    if name.endswith(CSV_SUFFIX):
        return _read_csv_people(path, text)
    return {None: _read_image_list(path, text)}


def keypoints_beside(
    box_stream: Path, samples: int, frame_size: tuple[int, int]
) -> np.ndarray | None:
    """(samples, 6, 2) x, y in pixels of the keypoint stream DISCOVER writes beside its box
    stream (six y, x pairs normalised to the frame, then the confidence); None where there is
    none, or one that does not match the box stream (another length, dimension, or values
    that are not finite): the boxes are used without keypoints then (and without a pose
    from them)."""
    path = keypoint_stream_path(box_stream)
    if not path.is_file():
        return None
    try:
        stream = read_stream(path)
    except FormatError:
        return None
    values = stream.data
    if values.ndim != 2 or values.shape[0] != samples or values.shape[1] not in (12, 13):
        return None
    if not np.isfinite(values[:, :12]).all():
        return None
    yx = values[:, :12].astype(np.float64).reshape(samples, 6, 2)
    return yx[:, :, ::-1] * np.array(frame_size, dtype=np.float64)


def read_boxes(path: str | Path, frame_size: tuple[int, int] | None = None) -> FaceBoxes:
    """The boxes of a box file of one face (`read_box_file`); a CSV with a face column is
    refused."""
    people = read_box_file(path, frame_size)
    if list(people) != [None]:
        raise FormatError(
            f"{path}: has a face column (several people): give it to analyze/render, which "
            "write one result set per face"
        )
    return people[None]


def boxes_from_normalised(
    values: np.ndarray, sr: float, frame_size: tuple[int, int], source: Path
) -> FaceBoxes:
    """Face boxes from BlazeFace rows `ymin, xmin, ymax, xmax[, conf]` normalised to the frame
    (an SSI stream's data, read from a file or handed over in memory by DISCOVER)."""
    dim = values.shape[1] if values.ndim == 2 else 0
    if dim not in (4, 5):
        raise FormatError(
            f"{source}: face boxes need dim 4 (ymin xmin ymax xmax) or 5 (plus "
            f"confidence), this stream has dim {dim}"
        )
    values = values.astype(np.float64)
    _reject_non_finite(source, values, "sample")
    conf = values[:, 4] if dim == 5 else np.ones(len(values))
    boxes = pixel_boxes(values, frame_size)
    return FaceBoxes(boxes, conf.astype(np.float32), sr, None, Path(source))


def pixel_boxes(values: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """(n, 4) x1, y1, x2, y2 in pixels (float64) from rows that start `ymin, xmin, ymax, xmax`
    normalised to the frame (width, height): how a box stream is read, and so how a detected
    box becomes pixels."""
    width, height = frame_size
    ymin, xmin, ymax, xmax = values[:, :4].astype(np.float64).T
    return np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)


def _read_text(path: Path) -> str:
    problem = unreadable_reason(path)
    if problem is not None:
        raise FormatError(f"{path}: box file: {problem}")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(f"{path}: box file is missing") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: box file is not UTF-8 text") from None
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error.strerror})") from None


def parse_finite(text: str, where: str, what: str = "value") -> float:
    """A finite number from text, else a FormatError that starts with `where` (the file and
    line). Shared by every text format that carries numbers from users."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{where}: {what} '{text}' is not a number") from None
    if not math.isfinite(value):
        raise FormatError(f"{where}: NaN or infinite {what} '{text}' (not a finite number)")
    return value


def _parse_number(path: Path, line: int, text: str) -> float:
    return parse_finite(text, f"{path}: line {line}")


def _reject_non_finite(path: Path, values: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise FormatError(f"{path}: {what} {bad[0]} has a NaN or infinite value")


def _read_csv_people(path: Path, text: str) -> dict[int | None, FaceBoxes]:
    rows = csv.reader(text.splitlines())
    header = [column.strip().lower() for column in next(rows, [])]
    missing = [column for column in CSV_COLUMNS if column not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS and c not in CSV_OPTIONAL_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise FormatError(
            f"{path}: header must be {','.join(CSV_COLUMNS)}[,{CSV_CONF_COLUMN}] "
            f"(with a {CSV_FACE_COLUMN} column for several people), found '{','.join(header)}'"
        )
    has_conf, has_face = CSV_CONF_COLUMN in header, CSV_FACE_COLUMN in header
    by_face: dict[int | None, dict[int, tuple[list[float], float]]] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise FormatError(f"{path}: line {line}: {len(row)} fields, expected {len(header)}")
        cells = dict(zip(header, row))
        frame = _parse_frame_number(path, line, cells["frame"].strip())
        face = _parse_face_id(path, line, cells[CSV_FACE_COLUMN]) if has_face else None
        by_frame = by_face.setdefault(face, {})
        if frame in by_frame:
            again = f"face {face} in frame {frame}" if has_face else f"frame {frame}"
            raise FormatError(f"{path}: line {line}: {again} appears twice")
        box = [_parse_number(path, line, cells[c].strip()) for c in CSV_COLUMNS[1:]]
        conf = _parse_number(path, line, cells[CSV_CONF_COLUMN].strip()) if has_conf else 1.0
        by_frame[frame] = (box, conf)
    if not by_face:
        raise FormatError(f"{path}: no boxes")
    return {face: _sparse_boxes(path, by_frame) for face, by_frame in sorted(by_face.items())}


def _sparse_boxes(path: Path, by_frame: dict[int, tuple[list[float], float]]) -> FaceBoxes:
    frames = sorted(by_frame)
    boxes = np.array([by_frame[frame][0] for frame in frames], dtype=np.float64)
    conf = np.array([by_frame[frame][1] for frame in frames], dtype=np.float32)
    return FaceBoxes(boxes, conf, None, None, path, frames=np.array(frames, dtype=np.int64))


def _parse_face_id(path: Path, line: int, text: str) -> int:
    value = _parse_number(path, line, text)
    if value < 0 or not value.is_integer():
        raise FormatError(f"{path}: line {line}: face '{text.strip()}' is not a face number")
    return int(value)


def _parse_frame_number(path: Path, line: int, text: str) -> int:
    value = _parse_number(path, line, text)
    if value < 0 or not value.is_integer():
        raise FormatError(f"{path}: line {line}: frame '{text}' is not a frame index")
    if value > MAX_FRAME_NUMBER:
        raise FormatError(
            f"{path}: line {line}: frame '{text}' is not a frame index (above "
            f"{MAX_FRAME_NUMBER:,}: epoch milliseconds?); the frame column counts frames from 0"
        )
    return int(value)


def _read_image_list(path: Path, text: str) -> FaceBoxes:
    images: list[str] = []
    boxes: list[list[float]] = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        # Split from the right so that image paths may contain spaces.
        fields = content.rstrip().rsplit(maxsplit=4)
        if len(fields) != 5:
            raise FormatError(f"{path}: line {line}: expected 'IMAGE_PATH x1 y1 x2 y2'")
        box = [_parse_number(path, line, value) for value in fields[1:]]
        images.append(fields[0].strip())
        boxes.append(box)
    if not boxes:
        raise FormatError(f"{path}: no boxes")
    conf = np.ones(len(boxes), dtype=np.float32)
    return FaceBoxes(np.array(boxes, dtype=np.float64), conf, None, images, path)
