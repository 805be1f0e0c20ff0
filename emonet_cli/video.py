"""Decoding videos and still images frame by frame, as RGB with container timestamps."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.fileio import unreadable_reason
from emonet_cli.selection import FrameSelection, Picker

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIBPNG_LINE = re.compile(rb"^libpng (?:warning|error): [^\n]*(?:\n|$)", re.MULTILINE)
FFMPEG_QUIET = "-8"  # AV_LOG_QUIET
# FFmpeg's own decoding threads. Its default (one per core) spreads decoding over the cores
# torch computes on and costs 10-20% more CPU per frame (measured on 2 cores, 720p MPEG-4 and
# H.264); every reader here decodes beside a network, so one thread decodes.
DECODER_THREADS = 1


class Frame:
    """One decoded frame: `index` (0-based, in decoding order, counting every frame of the
    video, selected or not), `time` (seconds from the first frame) and `image` (HxWx3 uint8
    RGB). A video frame keeps the decoder's BGR (`bgr`) and converts it to RGB on first use
    only, so that a frame that is only cropped is never converted whole (see
    align.crop_frame)."""

    __slots__ = ("index", "time", "bgr", "_rgb")

    def __init__(
        self,
        index: int,
        time: float,
        image: np.ndarray | None = None,
        *,
        bgr: np.ndarray | None = None,
    ):
        self.index = index
        self.time = time
        self.bgr = bgr
        self._rgb = image

    @property
    def image(self) -> np.ndarray | None:
        if self._rgb is None and self.bgr is not None:
            self._rgb = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2RGB)
        return self._rgb

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, time={self.time})"


@dataclass
class MediaInfo:
    path: Path
    width: int
    height: int
    fps: float  # nominal frame rate; 0 for a still image
    frame_count: int  # as the container states it (may be an estimate)
    is_image: bool

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class UnreadableImage(InputError):
    """An image file that is missing or cannot be decoded. `reason` is the message without
    the path, for callers that list skipped images beside their paths (`emonet evaluate`)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


_native_messages_muted = False
_stderr_lock = threading.Lock()


def mute_native_messages() -> None:
    """Keep what OpenCV, FFmpeg and libpng print on stderr themselves (warnings about a damaged
    frame or a PNG's colour profile, or their own words before our error) off the process's
    stderr: a failing input is reported once, as our one-line error. Process-wide, for the
    command line: call it before the first video is opened (FFmpeg reads its level once)."""
    global _native_messages_muted
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_QUIET)
    _native_messages_muted = True


@contextlib.contextmanager
def _libpng_lines_dropped() -> Iterator[None]:
    """libpng prints with fprintf(stderr), which no setting reaches: while it decodes, file
    descriptor 2 points at a temporary file, and what else was written there meanwhile (another
    thread's log line or progress bar) is passed on afterwards, libpng's lines left out. The
    lock keeps two decodes from swapping descriptors under each other; it serialises PNG
    decoding only, since the other decoders print nothing on their own."""
    if not _native_messages_muted:
        yield
        return
    with _stderr_lock, tempfile.TemporaryFile() as captured:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep clean
            saved = None
        if saved is None:
            yield
            return
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = LIBPNG_LINE.sub(b"", captured.read())
            if kept:
                os.write(2, kept)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (EXIF orientation applied, alpha dropped); raises
    UnreadableImage."""
    path = Path(path)
    problem = unreadable_reason(path)
    if problem is not None:
        raise UnreadableImage(path, problem)
    # imdecode of the bytes, rather than imread, also handles non-ASCII paths on every OS.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:  # e.g. no permission: a user's error, not a crash
        raise UnreadableImage(path, f"cannot read ({exc.strerror or exc})") from None
    image = None
    if data.size:
        is_png = data[: len(PNG_SIGNATURE)].tobytes() == PNG_SIGNATURE
        with _libpng_lines_dropped() if is_png else contextlib.nullcontext():
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableImage(path, "not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class MediaReader:
    """Iterates over the frames of a video (or the single frame of an image), never holding
    more than one decoded frame. Rotation metadata is applied by OpenCV's FFmpeg backend.
    With a `selection`, only its frames are yielded: the others are decoded (FFmpeg must, to
    reach the next one) but neither converted nor copied out (`grab()` without `retrieve()`),
    and decoding stops at its end."""

    def __init__(self, path: str | Path, selection: FrameSelection | None = None):
        self.path = Path(path)
        self.selection = selection
        problem = unreadable_reason(self.path)
        if problem is not None:
            raise InputError(f"{self.path}: {problem}")
        self._capture: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None
        self.last_time = 0.0  # of the last frame, once decoding has reached the end
        if is_image(self.path):
            self._first = read_image(self.path)
            height, width = self._first.shape[:2]
            self.info = MediaInfo(self.path, width, height, 0.0, 1, True)
            return
        capture = cv2.VideoCapture(
            str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, DECODER_THREADS]
        )
        if not capture.isOpened():
            raise InputError(f"{self.path}: not a readable video")
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise InputError(f"{self.path}: no decodable frame in the video")
        self._capture = capture
        self._first = first
        self._first_time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if math.isfinite(fps) and fps > 0 else 25.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # The decoded frame's shape is the truth: the properties may predate rotation.
        height, width = first.shape[:2]
        self.info = MediaInfo(self.path, width, height, fps, max(count, 1), False)
        if selection is not None:
            try:
                selection.check(self.info)
            except BaseException:
                self.close()
                raise

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise RuntimeError("a MediaReader can be iterated once")
        first, self._first = self._first, None
        if self.info.is_image:
            yield Frame(0, 0.0, first)
            return
        try:
            if self.selection is None:
                yield from self._frames(first, None)
                return
            count = 0
            for frame in self._frames(first, Picker(self.selection)):
                count += 1
                yield frame
            if count == 0:
                raise InputError(f"{self.path}: {self._nothing_selected()}")
        finally:
            self.close()

    def _frames(self, first: np.ndarray, picker: Picker | None) -> Iterator[Frame]:
        """Every frame, or those `picker` wants; the frames it skips are never retrieved."""
        capture = self._capture
        if picker is None or picker.wants(0, 0.0):
            yield Frame(0, 0.0, bgr=first)
        # Timestamps relative to the first frame: some containers start at a non-zero pts.
        origin = self._first_time
        index = 1
        previous_time = 0.0
        while capture.grab():
            # Microseconds are far below any frame interval; rounding keeps 0.3 as 0.3.
            time = round(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - origin, 6)
            if not math.isfinite(time) or time <= previous_time:
                # No usable timestamp: fall back on the nominal rate.
                time = round(previous_time + 1.0 / self.info.fps, 6)
            previous_time = time
            if picker is not None and picker.past_end(time):
                return  # the rest is not decoded at all
            if picker is None or picker.wants(index, time):
                ok, image = capture.retrieve()
                if not ok or image is None:
                    return
                yield Frame(index, time, bgr=image)
            index += 1
        self.last_time = previous_time

    def _nothing_selected(self) -> str:
        selection = self.selection
        if selection.end is None:
            return (
                f"no frame at or after --start {selection.start:g} s: the video's last frame "
                f"is at {self.last_time:.3f} s"
            )
        return f"no frame from --start {selection.start:g} s to before --end {selection.end:g} s"

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def find_media(paths: list[Path], recursive: bool = False) -> list[tuple[Path, Path]]:
    """Expand folders into the videos and images they hold (sorted); files are kept as given.
    Each input comes with its sub-folder relative to the folder it was found in ("." for a
    file given directly), so that outputs can mirror a folder tree without name clashes."""
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if not path.is_dir():
            found.append((path, Path(".")))
            continue
        candidates = path.rglob("*") if recursive else path.iterdir()
        media = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        found.extend((p, p.parent.relative_to(path)) for p in media)
    return found
