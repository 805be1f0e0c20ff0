"""One model fed by several analyses at once (`emonet analyze --decoders N`).

Each input's Analysis calls its predictor with the crops of one pending batch. A SharedModel
stands in for that predictor: it queues the crops of every input, and runs the model on full
batches of `batch_size` crops from any of them (an input's batch may be split between two),
then hands each caller its own rows. It runs as soon as a batch is full, or when every input
it serves is waiting for it (no more crops can come); the model runs in the thread of one of
the waiting callers, so that one input alone runs it in its own thread, as before.

On the CPU each input's batch runs alone, as it would without other inputs (the model's
passes, and so every output bit, are those of a run of that input alone; the model is the
bottleneck there, and its calls take turns). On an accelerator batches are filled from every
input, and every model call has the same shape: its rows padded with zeros to the whole batch,
so that a face's outputs depend neither on which faces share its batch nor on its place there
(measured on the CPU: a pass of 2 faces and one of 1 differ in the last bits). Either way an
input's outputs are the same bytes whatever number of inputs run beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emonet_cli.models.predictions import Predictions, Predictor


class RunStopped(BaseException):
    """The run is being stopped (Ctrl-C, kill, a failure that ends it): an input waiting for
    the model stops too, and its partial outputs are removed as after Ctrl-C. A BaseException,
    like KeyboardInterrupt, so that no per-input handler turns it into a failed input."""


@dataclass(eq=False)
class _Request:
    """One caller's inputs, in the queue until every row has been through the model."""

    inputs: Any  # an array, or a tuple of arrays (EMOTIC: contexts, bodies), of `rows` rows
    rows: int
    taken: int = 0  # rows handed to a model call so far
    done: int = 0  # rows whose outputs are back
    parts: list[tuple[int, Predictions]] = field(default_factory=list)  # (first row, outputs)
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return self.error is not None or self.done == self.rows


class SharedModel:
    """A Predictor (see models.predictions) that batches the calls of several threads. Each
    thread that analyses an input registers with `serving()` while it does; `stop()` ends
    every wait with RunStopped. Attributes other than the call are the predictor's."""

    def __init__(self, predictor: Predictor, batch_size: int):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.predictor = predictor
        self.batch_size = batch_size
        device = getattr(predictor, "device", None)
        # On the CPU each input's batch runs alone (see the module docstring).
        self.alone = getattr(device, "type", "cpu") == "cpu"
        self._turn = threading.Lock()
        self._changed = threading.Condition()
        self._queue: deque[_Request] = deque()
        self._serving = 0  # inputs registered
        self._waiting = 0  # callers waiting for their outputs
        self._running = False
        self._stopped = False

    def __getattr__(self, name: str) -> Any:  # family, nclass, device, precision, classes...
        return getattr(self.predictor, name)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """While an input is analysed: the model waits for its crops before running a batch
        that is not full."""
        with self._changed:
            self._serving += 1
        try:
            yield
        finally:
            with self._changed:
                self._serving -= 1
                self._changed.notify_all()

    def stop(self) -> None:
        """Every caller waiting now or later raises RunStopped."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def __call__(self, inputs: Any) -> Predictions:
        request = _Request(inputs, _rows(inputs))
        if request.rows == 0:
            return self.predictor(inputs)
        if self.alone:
            with self._turn:
                if self._stopped:
                    raise RunStopped
                return self.predictor(inputs)
        with self._changed:
            self._queue.append(request)
            self._waiting += 1
            try:
                while not request.finished:
                    if self._stopped:
                        raise RunStopped
                    if self._ready():
                        self._run_next_batch()
                    else:
                        self._changed.wait()
            finally:
                self._waiting -= 1
                if request in self._queue:  # stopped before all its rows were taken
                    self._queue.remove(request)
        if request.error is not None:
            raise request.error
        request.parts.sort(key=lambda part: part[0])
        return _concat_predictions([outputs for _, outputs in request.parts])

    def _ready(self) -> bool:
        if self._running or not self._queue:
            return False
        queued = sum(r.rows - r.taken for r in self._queue)
        return queued >= self.batch_size or self._waiting >= self._serving

    def _run_next_batch(self) -> None:
        """Take up to batch_size rows off the queue and run them, the lock released meanwhile
        (called and returning with it held)."""
        pieces: list[tuple[_Request, int, int]] = []
        room = self.batch_size
        while self._queue and room:
            request = self._queue[0]
            stop = min(request.rows, request.taken + room)
            pieces.append((request, request.taken, stop))
            room -= stop - request.taken
            request.taken = stop
            if stop == request.rows:
                self._queue.popleft()
        self._running = True
        self._changed.release()
        try:
            outputs, error = self._run(pieces), None
        except BaseException as exc:  # handed to every caller whose rows were in the batch
            outputs, error = None, exc
        finally:
            self._changed.acquire()
            self._running = False
        start = 0
        for request, first, stop in pieces:
            if error is not None:
                request.error = error
                if request in self._queue:  # the rest of it is not run either
                    self._queue.remove(request)
            else:
                request.parts.append((first, _slice_predictions(outputs, start, stop - first)))
                request.done += stop - first
            start += stop - first
        self._changed.notify_all()

    def _run(self, pieces: list[tuple[_Request, int, int]]) -> Predictions:
        inputs = _concat_inputs([_slice_inputs(r.inputs, a, b) for r, a, b in pieces])
        return self.predictor(_pad_inputs(inputs, self.batch_size - _rows(inputs)))


def _rows(inputs: Any) -> int:
    return len(inputs[0] if isinstance(inputs, tuple) else inputs)


def _slice_inputs(inputs: Any, start: int, stop: int) -> Any:
    if isinstance(inputs, tuple):
        return tuple(part[start:stop] for part in inputs)
    return inputs[start:stop]


def _concat_inputs(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))
    return np.concatenate(parts)


def _pad_inputs(inputs: Any, rows: int) -> Any:
    """`inputs` and `rows` more rows of zeros (whose outputs nobody reads)."""
    if rows == 0:
        return inputs

    def padded(array: np.ndarray) -> np.ndarray:
        return np.concatenate([array, np.zeros((rows, *array.shape[1:]), dtype=array.dtype)])

    if isinstance(inputs, tuple):
        return tuple(padded(part) for part in inputs)
    return padded(inputs)


def _slice_predictions(outputs: Predictions, start: int, rows: int) -> Predictions:
    return Predictions(
        **{
            f.name: None if value is None else value[start : start + rows]
            for f in dataclasses.fields(outputs)
            for value in (getattr(outputs, f.name),)
        }
    )


def _concat_predictions(parts: list[Predictions]) -> Predictions:
    if len(parts) == 1:
        return parts[0]
    return Predictions(
        **{
            f.name: None
            if getattr(parts[0], f.name) is None
            else np.concatenate([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(parts[0])
        }
    )
