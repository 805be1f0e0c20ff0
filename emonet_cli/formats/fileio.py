"""Atomic file output: a file appears under its final name only once it is complete.

A file is written under a hidden temporary name next to it, `.NAME.<host>.<pid>.<random>.part`,
and renamed when complete. The name records its writer, because several processes (on one
machine or on cluster nodes sharing a file system) may write into one folder at once: a
process removes only part files it can prove are stale, those of a process on its own host
that is gone. Its own are removed by the writer that made them when it fails; another host's
are left alone, since no process can tell whether they are alive. Part files without an owner
(`.NAME.<random>.part`, left by versions before the owner was recorded) are swept as before.
Every writer (results, weights downloads and conversions, plots, checkpoints) sweeps the stale
part files of its file before it writes it.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import glob
import os
import re
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from emonet_cli.formats.handles import BoundedFile

PART_SUFFIX = ".part"
# After `.NAME.`: host, pid, mkstemp's random letters, `.part`, then the writer's suffix.
OWNED_PART = re.compile(r"(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[a-z0-9_]+\.part(\..*)?")
UNOWNED_PART = re.compile(r"[a-z0-9_]{8}\.part(\..*)?")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def host_tag() -> str:
    """This machine's name as part file names carry it: dots (node1.cluster) become '-', so
    that the name splits into its fields unambiguously."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"


def temporary_sibling(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name next to `path`, on the same file system so rename is atomic, that
    names this process as its owner. The stale part files of `path` (of writers that are
    gone) are swept first: every writer goes through here, so none leaves them for good."""
    remove_partial_files(path)
    owner = f"{host_tag()}.{os.getpid()}"
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}.{owner}.", suffix=f"{PART_SUFFIX}{suffix}", dir=path.parent
        )
    except OSError as error:  # a read-only or full folder: name the file, not its part file
        raise type(error)(error.errno, error.strerror, str(path)) from None
    # mkstemp creates owner-only files; results get the permissions of an ordinary new file.
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    return Path(name)


def process_is_gone(pid: int) -> bool:
    """True only when no process `pid` exists on this machine (False when unsure)."""
    if pid <= 0 or os.name != "posix":  # os.kill(pid, 0) would signal a group, or kill on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists, under another user
        return False
    return False


def is_stale_part_file(leftover: Path, path: Path) -> bool:
    """Whether `leftover`, a part file of `path`, was left by a writer that is gone."""
    fields = leftover.name[len(path.name) + 2 :]  # after `.NAME.`
    owned = OWNED_PART.fullmatch(fields)
    if owned is None:
        return UNOWNED_PART.fullmatch(fields) is not None
    pid = int(owned["pid"])
    return owned["host"] == host_tag() and pid != os.getpid() and process_is_gone(pid)


# {folder: names of its part files} while part_files_listed_once() runs; None outside it.
_LISTED: contextvars.ContextVar[dict[Path, list[str]] | None] = contextvars.ContextVar(
    "part_files_listed", default=None
)


@contextlib.contextmanager
def part_files_listed_once() -> Iterator[None]:
    """Within the block (in this thread), each folder's part files are listed once, when the
    first of its files is swept, instead of the whole folder being read again for every file
    written: one input of 300 people wrote 2,100 files and spent 6.6 s of its 8.9 s reading
    its folder, and a corpus folder grows with every input. A part file that appears after
    the listing belongs to a writer that was alive then; if that writer dies meanwhile, the
    next sweep of the file removes it, as it would another host's."""
    token = _LISTED.set({})
    try:
        yield
    finally:
        _LISTED.reset(token)


def _part_files_of(path: Path) -> list[Path]:
    """The part files of `path` (of any writer), from the block's listing where there is one."""
    listed = _LISTED.get()
    if listed is None:
        return list(path.parent.glob(f".{glob.escape(path.name)}.*{PART_SUFFIX}*"))
    names = listed.get(path.parent)
    if names is None:
        try:
            names = [name for name in os.listdir(path.parent) if PART_SUFFIX in name]
        except FileNotFoundError:  # a folder made later holds no earlier part files
            names = []
        listed[path.parent] = names
    prefix = f".{path.name}."
    return [
        path.parent / name
        for name in names
        if name.startswith(prefix) and PART_SUFFIX in name[len(prefix) :]
    ]


def remove_partial_files(path: Path) -> None:
    """Remove the stale temporary siblings of `path`, left by a run that was killed outright
    (SIGKILL, power loss), before writing `path` again; live writers' files are kept."""
    for leftover in _part_files_of(path):
        if is_stale_part_file(leftover, path):
            leftover.unlink(missing_ok=True)


def remove_partial_files_matching(folder: Path, pattern: str) -> None:
    """remove_partial_files for every name in `folder` matching the glob `pattern`, whether or
    not the file itself exists (a killed run may have left only its part file)."""
    for leftover in folder.glob(f".{pattern}.*{PART_SUFFIX}*"):
        hidden = leftover.name[1:]
        # The owner fields follow the name: try each dot until the rest reads as them.
        for cut in (i for i, char in enumerate(hidden) if char == "."):
            if fnmatch.fnmatchcase(hidden[:cut], pattern) and is_stale_part_file(
                leftover, folder / hidden[:cut]
            ):
                leftover.unlink(missing_ok=True)
                break


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
        # A part file that cannot be removed now is stale once this process ends: a later
        # sweep removes it. The error that got us here is the one to report.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """open() for writing, with the atomic rename of `atomic_path`."""
    with atomic_path(path) as tmp:
        file = open(tmp, mode, **kwargs)
        try:
            yield file
            file.close()  # the last flush: a full disk may fail it
        except BaseException as error:
            # What is thrown away need not reach the disk: a full one must not stop the clean-up
            # (close releases the descriptor even when its flush fails).
            with contextlib.suppress(OSError):
                file.close()
            if isinstance(error, OSError) and error.filename is None:
                error.filename = str(path)  # a failed write names no file: name the result
            raise


class PendingFile:
    """A file written across several calls under a temporary name. It appears under its own
    name in two steps, so that several files can appear together: finish() writes everything
    out (where a full disk fails), publish() renames; commit() does both. discard() instead
    leaves nothing."""

    def __init__(self, path: str | os.PathLike, binary: bool):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_sibling(self.path)
        # A descriptor only while written: bounded whatever the number of pending files.
        self.file = BoundedFile(self._tmp, binary, self.path)

    def finish(self) -> None:
        try:
            self.file.close()  # the last flush: a full disk may fail it
        except OSError as error:
            if error.filename is None:
                error.filename = str(self.path)  # a failed write names no file: name the result
            raise

    def publish(self) -> None:
        os.replace(self._tmp, self.path)

    def commit(self) -> None:
        self.finish()
        self.publish()

    def discard(self) -> None:
        # What is thrown away need not reach the disk: a full one must not stop the clean-up
        # (close releases the descriptor even when its flush fails). A part file that cannot
        # be removed now is stale once this process ends: a later sweep removes it.
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)

    abort = discard  # the name the output writers use


class HeaderAndDataWriter:
    """A header and its data file (an SSI stream, a NOVA annotation) written as pending files:
    the subclass's `finish` writes both out, `publish` gives them their names, data first."""

    header: Path
    _data: PendingFile
    _header: PendingFile | None

    def finish(self) -> None:
        raise NotImplementedError

    def publish(self) -> Path:
        """Give the finished files their names, data first; returns the header's path."""
        self._data.publish()
        self._header.publish()
        return self.header

    def close(self) -> Path:
        """Finish and publish; returns the header's path."""
        self.finish()
        return self.publish()

    def abort(self) -> None:
        """Remove what was written."""
        self._data.discard()
        if self._header is not None:
            self._header.discard()


class WrappedWriter:
    """The finishing steps of an output writer that writes through another (`self._writer`:
    a PendingFile, a stream or an annotation writer)."""

    def finish(self) -> None:
        self._writer.finish()

    def publish(self) -> None:
        self._writer.publish()

    def close(self) -> None:
        self.finish()
        self.publish()

    def abort(self) -> None:
        self._writer.abort()


def pending_text(path: str | os.PathLike, text: str) -> PendingFile:
    """A finished, unpublished text file holding `text` (e.g. a header that is to appear
    together with its data)."""
    pending = PendingFile(path, binary=False)
    try:
        pending.file.write(text)
        pending.finish()
    except BaseException:
        pending.discard()
        raise
    return pending


NOT_A_REGULAR_FILE = "not a regular file"


def unreadable_reason(path: Path) -> str | None:
    """Why `path` cannot be read as an input file, or None when it can: 'no such file', or
    'not a regular file' for a folder, a FIFO or a device such as /dev/null (reading a FIFO
    would wait forever for a writer)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    return None if stat.S_ISREG(mode) else NOT_A_REGULAR_FILE


def describe_os_error(error: OSError) -> str:
    """One line for a file-system error a user or the machine can cause (read-only folder,
    full disk, missing permission): what failed and where, without a traceback."""
    reason = error.strerror or str(error) or type(error).__name__
    where = error.filename
    if where is not None and error.filename2 is not None:
        where = f"{where} -> {error.filename2}"
    return f"{reason}: {where}" if where is not None else reason
