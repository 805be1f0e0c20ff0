"""Output files that hold a descriptor only while they are written: however many files a run
writes at once (a tracked recording: people x outputs), at most `MAX_OPEN_OUTPUTS` of them are
open in a process. The least recently written one is flushed and closed when another needs a
descriptor, and reopened for appending at its next write.

Without the bound every person kept about four files open until the end, so that ~250 people
exhausted the common limit of 1,024 descriptors (~60 under macOS's 256)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO

# Far below the limits met in practice (256 on macOS, 1,024 on Linux), leaving the decoder,
# the model's libraries and the other open files of the process their share.
MAX_OPEN_OUTPUTS = 64


class DescriptorPool:
    """The BoundedFiles of a process that hold a descriptor, least recently written first."""

    def __init__(self, limit: int = MAX_OPEN_OUTPUTS):
        self.limit = limit
        self.lock = threading.RLock()
        self._holding: OrderedDict[int, BoundedFile] = OrderedDict()

    def hold(self, file: BoundedFile) -> IO:
        """`file`'s open handle (opened if need be); closes the least recently written ones
        beyond the limit. Called with `lock` held."""
        key = id(file)
        if key in self._holding:
            self._holding.move_to_end(key)
        else:
            while len(self._holding) >= self.limit:
                _, oldest = self._holding.popitem(last=False)
                oldest.release()
            file.reopen()
            self._holding[key] = file
        return file.handle

    def drop(self, file: BoundedFile) -> None:
        self._holding.pop(id(file), None)

    @property
    def holding(self) -> int:
        return len(self._holding)


POOL = DescriptorPool()


class BoundedFile:
    """A file written only through `write` (as csv.writer and the stream and annotation
    writers do), whose descriptor the pool may close between writes. A failure to flush
    when it is closed early is raised at its next write or close, naming `label`."""

    def __init__(self, path: Path, binary: bool, label: Path, pool: DescriptorPool = POOL):
        self.path, self.binary, self.label, self.pool = path, binary, label, pool
        self.handle: IO | None = None
        self.closed = False
        self._started = False
        self._error: OSError | None = None

    def reopen(self) -> None:
        mode = ("a" if self._started else "w") + ("b" if self.binary else "")
        text = {} if self.binary else {"encoding": "utf-8", "newline": "\n"}
        self.handle = open(self.path, mode, **text)
        self._started = True

    def release(self) -> None:
        """Flush and close the descriptor (the pool needs it); the file stays writable."""
        handle, self.handle = self.handle, None
        if handle is None:
            return
        try:
            handle.close()  # releases the descriptor even when its flush fails
        except OSError as error:
            self._error = self._error or error

    def write(self, data) -> int:
        with self.pool.lock:
            self._raise_stored()
            if self.closed:
                raise ValueError(f"write to closed file {self.label}")
            return self.pool.hold(self).write(data)

    def close(self) -> None:
        """The last flush (where a full disk fails) and the descriptor's release."""
        with self.pool.lock:
            if self.closed:
                return
            self.closed = True
            self.pool.drop(self)
            handle, self.handle = self.handle, None
            if handle is not None:
                handle.close()
            self._raise_stored()

    def _raise_stored(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            if error.filename is None:
                error.filename = str(self.label)
            raise error
