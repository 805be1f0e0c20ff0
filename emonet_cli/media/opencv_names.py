"""File names OpenCV can open, for files whose own name it cannot take.

Linux allows any bytes in a file name; Python holds the bytes that are not UTF-8 as lone
surrogates (`clip\\udcff.mp4`, PEP 383). OpenCV's Python binding converts a name to UTF-8 and
crashes the process (a segmentation fault, not an exception) when it cannot, and FFmpeg reads
a relative name with a colon (`take:2.mp4`) as a protocol (`take:`). Such a file is handed to
OpenCV through a symbolic link with a plain name, `media<suffix>`, in a private temporary
folder of this process (mkdtemp: unique, owner-only; nothing another process could collide
with), removed as soon as OpenCV has opened it. The link keeps the suffix, which FFmpeg's
writer needs to choose the container. Every other name is passed unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PLAIN_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def opencv_takes(name: str) -> bool:
    """Whether OpenCV (and FFmpeg behind it) opens the file `name` under this very name."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, held as surrogates
        return False
    return ":" not in name


@contextlib.contextmanager
def opencv_name(path: str | os.PathLike) -> Iterator[str]:
    """A name of the file `path` (existing or to be written through) that OpenCV can open,
    for the duration of the block: `path` itself where OpenCV takes it, else a symbolic link
    to it with a plain name (see the module's note). Close nothing OpenCV opened inside the
    block afterwards: once open, the file no longer needs the link."""
    name = os.fspath(path)
    if opencv_takes(name):
        yield name
        return
    suffix = Path(name).suffix
    link_name = "media" + (suffix if PLAIN_SUFFIX.fullmatch(suffix) else "")
    folder = tempfile.mkdtemp(prefix="emonet-name-")
    try:
        link = os.path.join(folder, link_name)
        os.symlink(os.path.abspath(name), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)
