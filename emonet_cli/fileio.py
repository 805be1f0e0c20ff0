"""Atomic file output: a file appears under its final name only once it is complete."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_sibling(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name next to `path`, on the same file system so rename is atomic."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    # mkstemp creates owner-only files; results get the permissions of an ordinary new file.
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    return Path(name)


def remove_partial_files(path: Path) -> None:
    """Remove temporary siblings of `path` left by a run that was killed outright (SIGKILL,
    power loss), before writing `path` again."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.part*"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write to; it is renamed to `path` when the block succeeds
    and removed when it fails. `suffix` keeps an extension for writers that need one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """open() for writing, with the atomic rename of `atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


class WriteDiscarded(Exception):
    """Ends a PendingFile's block so that its temporary file is removed."""


class PendingFile:
    """A file written across several calls that appears under its name only on commit()
    (through atomic_open), and never if discard() is called instead."""

    def __init__(self, path: Path, binary: bool):
        self._exit = contextlib.ExitStack()
        text = {} if binary else {"encoding": "utf-8", "newline": "\n"}
        self.file = self._exit.enter_context(atomic_open(path, "wb" if binary else "w", **text))

    def commit(self) -> None:
        self._exit.close()

    def discard(self) -> None:
        # atomic_open removes its temporary file when its block ends with an exception.
        self._exit.__exit__(WriteDiscarded, WriteDiscarded(), None)


def describe_os_error(error: OSError) -> str:
    """One line for a file-system error a user or the machine can cause (read-only folder,
    full disk, missing permission): what failed and where, without a traceback."""
    reason = error.strerror or str(error) or type(error).__name__
    where = error.filename
    if where is not None and error.filename2 is not None:
        where = f"{where} -> {error.filename2}"
    return f"{reason}: {where}" if where is not None else reason
