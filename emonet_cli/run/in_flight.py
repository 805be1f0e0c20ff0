"""Several inputs at once into one model (`emonet analyze --decoders N`), callable from Python
through runner.run_many(decoders=N).

Each input in flight is analysed in a thread of its own, as one input is (its decoding thread,
its crops, its writers); their crops meet in one SharedModel, which runs the model on full
batches from all of them. Outcomes come in the order of the inputs. Beside a model on the CPU
one input keeps the cores busy (the model is the bottleneck), so the default there is one;
beside an accelerator one decoder falls far short of the model, so several inputs decode at
once.

Stopping: a KeyboardInterrupt (Ctrl-C, or a polite kill, see cli.common) or a failure that
ends the run stops every input in flight at its next batch; each removes its partial outputs,
and the error goes on once they have.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from emonet_cli.analysis.pipeline import AnalysisSettings
from emonet_cli.analysis.shared_model import RunStopped, SharedModel
from emonet_cli.run.one_input import LoadedModel, Outcome, ProgressFactory, ToAnalyse, analyze_one

MAX_ACCELERATOR_DECODERS = 8


def default_decoders(device: Any) -> int:
    """Inputs in flight by default beside a model on `device` (a torch.device or a --device
    name): one beside the CPU; beside an accelerator half the usable cores, at most
    MAX_ACCELERATOR_DECODERS: an input in flight keeps about two cores busy (FFmpeg's
    decoding; the box lookup, crops and writers)."""
    kind = getattr(device, "type", None)
    if kind is None:
        if str(device) == "cpu":
            return 1
        from emonet_cli.devices import select_device

        kind = select_device(str(device)).type
    if kind == "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_ACCELERATOR_DECODERS, (cores or 2) // 2))


class _StoppableBar:
    """A progress bar (or none) whose update stops its input once the run is stopping: each
    input's analysis reports each batch of frames it wrote through it."""

    def __init__(self, bar, stop: threading.Event):
        self._bar, self._stop = bar, stop

    def __enter__(self) -> _StoppableBar:
        if self._bar is not None:
            self._bar = self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __setattr__(self, name: str, value) -> None:
        if name == "total":
            if self._bar is not None:
                self._bar.total = value
            return
        super().__setattr__(name, value)

    def update(self, frames: int) -> None:
        if self._stop.is_set():
            raise RunStopped
        if self._bar is not None:
            self._bar.update(frames)


def run_in_flight(
    inputs: Iterator[Outcome | ToAnalyse],
    *,
    decoders: int,
    loaded: LoadedModel,
    settings: AnalysisSettings,
    fail_fast: bool = False,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[Outcome]:
    """run_many's loop with `decoders` inputs analysed at once (see the module's docstring);
    the same Outcomes, in the same order. An input's files are the same bytes as with one."""
    stop = threading.Event()
    shared: SharedModel | None = None
    provenance: dict = {}

    def bar(path: Path) -> _StoppableBar:
        return _StoppableBar(progress(path) if progress else None, stop)

    def analyze(item: ToAnalyse) -> Outcome:
        with shared.serving():
            return analyze_one(
                item.path,
                item.source,
                shared,
                provenance,
                settings=settings,
                options=item.options,
                progress=bar,
                on_warning=on_warning,
            )

    pending: deque[Outcome | Future] = deque()

    def finished() -> Iterator[Outcome]:
        """The outcomes at the head of `pending` that are done, in order."""
        while pending and (isinstance(pending[0], Outcome) or pending[0].done()):
            head = pending.popleft()
            yield head if isinstance(head, Outcome) else head.result()

    def running() -> list[Future]:
        return [item for item in pending if isinstance(item, Future) and not item.done()]

    pool = ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="emonet-input")
    try:
        for item in inputs:
            if isinstance(item, Outcome):
                pending.append(item)
            else:
                if shared is None:  # loaded on first need
                    predictor, loaded_provenance = loaded.get()
                    provenance.update(loaded_provenance)
                    shared = SharedModel(predictor, settings.batch_size)
                pending.append(pool.submit(analyze, item))
            while True:  # what is done, in order; then room for the next input
                for outcome in finished():
                    yield outcome
                    if fail_fast and outcome.status == "error":
                        return
                busy = running()
                if len(busy) < decoders:
                    break
                wait(busy, return_when=FIRST_COMPLETED)
        while pending:
            for outcome in finished():
                yield outcome
                if fail_fast and outcome.status == "error":
                    return
            if pending:
                wait([pending[0]])
    finally:
        # Ctrl-C, kill, an error that ends the run, fail-fast or the caller closing: every
        # input still in flight stops and removes its partial outputs before this returns.
        stop.set()
        if shared is not None:
            shared.stop()
        pool.shutdown(wait=True, cancel_futures=True)
