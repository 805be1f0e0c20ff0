"""Reading still images, and keeping the native libraries' own messages off stderr."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.formats.fileio import unreadable_reason

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIBPNG_LINE = re.compile(rb"^libpng (?:warning|error): [^\n]*(?:\n|$)", re.MULTILINE)
FFMPEG_QUIET = "-8"  # AV_LOG_QUIET


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
