"""Decoding videos and still images frame by frame, as RGB with container timestamps."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.formats.fileio import unreadable_reason
from emonet_cli.media.frames import MEDIA_SUFFIXES, Frame, MediaInfo, is_image
from emonet_cli.media.images import read_image
from emonet_cli.media.opencv_names import opencv_name
from emonet_cli.media.selection import FrameSelection, Picker

# FFmpeg's own decoding threads. Its default (one per core) spreads decoding over the cores
# torch computes on and costs 10-20% more CPU per frame (measured on 2 cores, 720p MPEG-4 and
# H.264); a reader decodes beside a network, so one thread decodes unless the network runs
# elsewhere (see tuning.decoder_threads_beside).
DECODER_THREADS = 1


class MediaReader:
    """Iterates over the frames of a video (or the single frame of an image), never holding
    more than one decoded frame. Rotation metadata is applied by OpenCV's FFmpeg backend.
    With a `selection`, only its frames are yielded: the others are decoded (FFmpeg must, to
    reach the next one) but neither converted nor copied out (`grab()` without `retrieve()`),
    and decoding stops at its end. `decoder_threads`: FFmpeg's threads (0: one per core).
    Decoded frames are the same bytes whatever their number."""

    def __init__(
        self,
        path: str | Path,
        selection: FrameSelection | None = None,
        decoder_threads: int = DECODER_THREADS,
    ):
        self.path = Path(path)
        self.selection = selection
        problem = unreadable_reason(self.path)
        if problem is not None:
            raise InputError(f"{self.path}: {problem}")
        self._capture: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None
        self.last_time = 0.0  # of the last frame, once decoding has reached the end
        self.frames_decoded: int | None = None  # every frame, once decoding has reached the end
        if is_image(self.path):
            self._first = read_image(self.path)
            height, width = self._first.shape[:2]
            self.info = MediaInfo(self.path, width, height, 0.0, 1, True)
            return
        with opencv_name(self.path) as name:
            capture = cv2.VideoCapture(
                name, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, decoder_threads]
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
        rotation = capture.get(cv2.CAP_PROP_ORIENTATION_META)
        rotation = int(rotation) % 360 if math.isfinite(rotation) and rotation > 0 else 0
        self.info = MediaInfo(self.path, width, height, fps, max(count, 1), False, rotation)
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
        self.frames_decoded = index

    def count_mismatch(self) -> str | None:
        """What to tell when the container announced another number of frames than decoded
        (an estimated header, damaged last packets); None when they agree or decoding has
        not reached the end."""
        decoded, announced = self.frames_decoded, self.info.frame_count
        if self.info.is_image or decoded is None or decoded == announced:
            return None
        return f"{self.path}: the container announces {announced} frames, {decoded} were decoded"

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
    file given directly), so that outputs can mirror a folder tree without name clashes.
    A file reached twice (given twice, through a symlink, `./x` and `x`, a folder and a file
    in it) is listed once, where it is first reached."""
    found: list[tuple[Path, Path]] = []
    seen: set = set()

    def add(path: Path, subfolder: Path) -> None:
        key = file_identity(path)
        if key not in seen:
            seen.add(key)
            found.append((path, subfolder))

    for path in paths:
        if not path.is_dir():
            add(path, Path("."))
            continue
        candidates = path.rglob("*") if recursive else path.iterdir()
        media = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        for p in media:
            add(p, p.parent.relative_to(path))
    return found


def file_identity(path: Path) -> tuple:
    """What makes two paths one file: its device and inode (hard and symbolic links, `./x`
    and `x`), else, for a path that cannot be read, its absolute form."""
    try:
        status = path.stat()
    except OSError:
        return ("path", os.path.abspath(path))
    return ("inode", status.st_dev, status.st_ino)
