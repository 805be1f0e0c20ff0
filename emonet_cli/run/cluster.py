"""`emonet analyze` on a Dask cluster: one task per input file, results identical to a local run.

Each worker process tunes itself (tuning.tune_process) and loads the model once, by the same
weight rules as a local run (ModelOptions.load), and keeps it for the tasks that follow. A task
writes its outputs where a local run would (so inputs, outputs and weights must be reachable at
the same paths from every worker) and returns the input's Outcome; the client yields them in
the order they complete. Dask itself is an optional extra: `pip install 'emonet-cli[cluster]'`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from emonet_cli.analysis.analyze import outputs_of
from emonet_cli.analysis.shared_model import SharedModel
from emonet_cli.errors import EmonetError
from emonet_cli.run.one_input import LoadedModel, Outcome, already_done, analyze_one, mirrored

if TYPE_CHECKING:
    from emonet_cli.analysis.pipeline import AnalysisSettings
    from emonet_cli.faces import BoxOptions
    from emonet_cli.outputs.writers import OutputOptions
    from emonet_cli.run.one_input import ModelOptions

log = logging.getLogger("emonet")

INSTALL_HINT = "pip install 'emonet-cli[cluster]'"
CONNECT_TIMEOUT = "20s"

# What a worker process keeps between its tasks: the models it loaded, by their options.
_models: dict = {}
_tuned = False


def require_distributed():
    """The `distributed` module, or the one-line error that says how to install it."""
    try:
        import distributed
    except ImportError:
        raise EmonetError(
            f"--scheduler and --workers need Dask, which is not installed: {INSTALL_HINT}"
        ) from None
    return distributed


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[object]:
    """A dask.distributed Client: of the scheduler at `scheduler`, or of a local cluster of
    `workers` worker processes (one thread each) started for the run and closed after it,
    on errors and Ctrl-C too."""
    distributed = require_distributed()
    if workers is not None:
        with (
            preserved_environment(),
            distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # Dask's own log lines (a failed task's traceback, workers' farewells) stay
                # off stderr: each input ends in one line of ours.
                silence_logs=logging.CRITICAL,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise EmonetError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        yield client


@contextlib.contextmanager
def preserved_environment() -> Iterator[None]:
    """Restores os.environ afterwards: starting a LocalCluster sets OMP_NUM_THREADS=1 (and
    malloc settings) in this process for its workers and leaves them, which would change the
    thread count, and so the last digits, of every process started later from here."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def worker_model(model: ModelOptions):
    """The (Predictor, provenance) of `model` in this worker process, loaded on first need and
    kept; the process is tuned once, before its first model."""
    global _tuned
    if not _tuned:
        from emonet_cli.media.tuning import tune_process

        tune_process()
        _tuned = True
    if model not in _models:
        _models[model] = model.load()
    return _models[model]


def analyze_task(
    path: Path,
    subfolder: Path,
    boxes: BoxOptions,
    model: ModelOptions,
    settings: AnalysisSettings,
    options: OutputOptions,
) -> Outcome:
    """One input on a worker, as run_many does it locally. Per-input errors come back as a
    failed Outcome; a weights problem raises (it ends the run, as locally)."""
    try:
        source = boxes.source_for(path, subfolder)
    except EmonetError as exc:
        return Outcome(path, "error", error=str(exc))
    written = mirrored(outputs_of(options, source), subfolder)
    predictor, provenance = worker_model(model)
    # As in a local run (analysis/shared_model.py): the same bytes.
    predictor = SharedModel(predictor, settings.batch_size)
    return analyze_one(path, source, predictor, provenance, settings=settings, options=written)


def check_output_folder(directory: Path | None) -> None:
    """Before any task: the output folder can be created and written to."""
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmonetError(f"{directory}: cannot create the output folder: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise EmonetError(f"{directory}: the output folder is not writable")


def run_on_cluster(
    client,
    media: Sequence[tuple[Path, Path]],
    *,
    boxes: BoxOptions,
    model: ModelOptions,
    settings: AnalysisSettings,
    options: OutputOptions,
    skip_existing: bool = False,
    fail_fast: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[Outcome]:
    """run_many with an executor: inputs that are skipped or whose boxes cannot be found are
    settled here; the others become one task each, yielded as they complete. Leaving early
    (fail_fast, Ctrl-C, the caller stopping) cancels the tasks still pending."""
    distributed = require_distributed()
    check_output_folder(options.directory)
    if any(not path.is_absolute() for path, _ in media):
        log.warning(
            "relative input paths: the workers must run in the same folder (%s)", os.getcwd()
        )
    model = replace(model, progress=False)  # no download bars on workers
    loaded = LoadedModel(model)  # here only to compare finished results with what is asked
    settled: list[Outcome] = []
    jobs: list[tuple[Path, Path]] = []
    for path, subfolder in media:
        try:
            source = boxes.source_for(path, subfolder)
        except EmonetError as exc:
            settled.append(Outcome(path, "error", error=str(exc)))
            if fail_fast:
                yield from settled
                return
            continue
        written = mirrored(outputs_of(options, source), subfolder)
        if skip_existing and already_done(path, source, written, settings, loaded):
            settled.append(Outcome(path, "skipped"))
        else:
            jobs.append((path, subfolder))

    futures = {}
    try:
        for path, subfolder in jobs:
            # retries: a task that raised is run once more; one whose worker died is
            # rescheduled by Dask (up to distributed.scheduler.allowed-failures times).
            future = client.submit(
                analyze_task, path, subfolder, boxes, model, settings, options,
                pure=False, retries=1,
            )  # fmt: skip
            futures[future] = path
        yield from settled
        for future in distributed.as_completed(futures):
            outcome = task_outcome(future, futures[future], distributed)
            if on_warning is not None and outcome.report is not None:
                for message in outcome.report.warnings:
                    on_warning(message)
            yield outcome
            if fail_fast and outcome.status == "error":
                return
    finally:
        pending = [future for future in futures if not future.done()]
        if pending:
            client.cancel(pending)


def task_outcome(future, path: Path, distributed) -> Outcome:
    """The Outcome a task returned; workers that died under it fail the input alone."""
    try:
        return future.result()
    except distributed.KilledWorker as exc:
        message = f"{path}: each worker process that analysed it died (killed, out of memory?)"
        return Outcome(path, "error", error=message, details=f"{exc}\n")
