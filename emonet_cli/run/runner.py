"""Running many inputs: the per-input loop of `emonet analyze`, callable from Python.

`run_many` yields one `Outcome` per input, in order: analysed, skipped (results exist) or
failed (with the one-line reason). A failing input never stops the others unless `fail_fast`;
the model is loaded once, on the first input that needs it, and a weights problem ends the run
(it would fail every input the same way).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from emonet_cli.analysis.pipeline import AnalysisSettings
from emonet_cli.analysis.shared_model import SharedModel
from emonet_cli.faces import BoxOptions
from emonet_cli.outputs.failures import clear_failure, record_failure
from emonet_cli.outputs.writers import FACES_SUFFIX, OutputOptions
from emonet_cli.run.in_flight import default_decoders, run_in_flight
from emonet_cli.run.one_input import (
    LoadedModel,
    ModelOptions,
    Outcome,
    ProgressFactory,
    ToAnalyse,
    analyze_one,
    bar_callbacks,
    guarded,
    mirrored,
    prepared,
)

if TYPE_CHECKING:
    from emonet_cli.faces.detection.detector import DetectionSettings


def output_clashes(
    media: Sequence[tuple[Path, Path]], directory: Path | None
) -> list[tuple[Path, Path]]:
    """Pairs of inputs that would write the same output names (`clip.avi` and `clip.mp4` in
    one folder): a run refuses them before any work, rather than one overwriting the other."""
    first: dict[tuple[Path, str], Path] = {}
    clashes = []
    for path, subfolder in media:
        folder = directory / subfolder if directory is not None else path.parent
        key = (folder.resolve(), path.stem)
        if key in first and first[key].resolve() != path.resolve():
            clashes.append((first[key], path))
        first.setdefault(key, path)
    return clashes


def run_many(
    media: Sequence[tuple[Path, Path]],
    *,
    boxes: BoxOptions,
    model: ModelOptions,
    settings: AnalysisSettings | None = None,
    options: OutputOptions | None = None,
    skip_existing: bool = False,
    fail_fast: bool = False,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
    executor=None,
    decoders: int | None = None,
    record_failures: bool = False,
) -> Iterator[Outcome]:
    """Analyse each (path, sub-folder) of `media` (as `video.find_media` lists them) and yield
    its Outcome. `progress(path)` may return a context manager with `total` and `update(n)`
    (a tqdm bar) to follow the frames of each input.

    `decoders` inputs are decoded at once and their faces batched together into the one
    model (see in_flight.py); None: one beside a model on the CPU, more beside an accelerator
    (in_flight.default_decoders). Each input's files are the same bytes whatever the number.

    With `executor`, a dask.distributed Client, each input is a task on its cluster and the
    Outcomes come in the order the tasks complete (see cluster.py; `progress` is not used).

    With `record_failures` (a folder run of `emonet analyze`), a failed input leaves
    `S.failed.json` for `emonet report`; otherwise a failed input writes nothing."""
    settings = settings or AnalysisSettings()
    # The family's results decide the files (and so what counts as complete).
    options = replace(options or OutputOptions(), family=model.family)
    if executor is not None:
        from emonet_cli.run.cluster import run_on_cluster

        subfolders = dict(media)
        outcomes = run_on_cluster(
            executor,
            media,
            boxes=boxes,
            model=model,
            settings=settings,
            options=options,
            skip_existing=skip_existing,
            fail_fast=fail_fast,
            on_warning=on_warning,
        )
        with contextlib.closing(outcomes):
            for outcome in outcomes:
                yield recorded(outcome, options, subfolders[outcome.input], record_failures)
        return
    loaded = LoadedModel(model)
    inputs = prepared(
        media,
        boxes=boxes,
        options=options,
        settings=settings,
        skip_existing=skip_existing,
        loaded=loaded,
    )
    decoders = default_decoders(model.device) if decoders is None else decoders
    if decoders > 1:
        outcomes = run_in_flight(
            inputs,
            decoders=decoders,
            loaded=loaded,
            settings=settings,
            fail_fast=fail_fast,
            progress=progress,
            on_warning=on_warning,
        )
    else:
        outcomes = one_at_a_time(
            inputs, loaded=loaded, settings=settings, progress=progress, on_warning=on_warning
        )
    subfolders = dict(media)
    with contextlib.closing(outcomes):
        for outcome in outcomes:
            yield recorded(outcome, options, subfolders[outcome.input], record_failures)
            if fail_fast and outcome.status == "error":
                return


def one_at_a_time(
    inputs: Iterator[Outcome | ToAnalyse],
    *,
    loaded: LoadedModel,
    settings: AnalysisSettings,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[Outcome]:
    """run_many's inputs analysed one after the other, in this thread."""
    shared = provenance = None
    for item in inputs:
        if isinstance(item, Outcome):
            yield item
            continue
        if shared is None:  # loaded on first need
            predictor, provenance = loaded.get()
            # As with several inputs in flight (analysis/shared_model.py): the same bytes.
            shared = SharedModel(predictor, settings.batch_size)
        yield analyze_one(
            item.path,
            item.source,
            shared,
            provenance,
            settings=settings,
            options=item.options,
            progress=progress,
            on_warning=on_warning,
        )


def recorded(
    outcome: Outcome, options: OutputOptions, subfolder: Path, keep_failure: bool = True
) -> Outcome:
    """The one hook on what became of an input: a failed one leaves `S.failed.json` where its
    results would be (outputs/failures.py) when `keep_failure`, an analysed one removes an
    earlier run's; `emonet report` reads them. Where the record cannot be written (a read-only
    or full folder), the failure's own line has said it all: one failing input, one line."""
    directory = mirrored(options, subfolder).directory
    with contextlib.suppress(OSError):
        if outcome.status == "error" and keep_failure:
            record_failure(outcome.input, directory, outcome.error or "", options.family)
        elif outcome.status == "ok":
            clear_failure(outcome.input, directory)
    return outcome


def detect_many(
    media: Sequence[tuple[Path, Path]],
    *,
    detection: DetectionSettings,
    directory: Path | None = None,
    skip_existing: bool = False,
    fail_fast: bool = False,
    progress: ProgressFactory | None = None,
) -> Iterator[Outcome]:
    """`emonet detect` for each (path, sub-folder) of `media`: DISCOVER's box streams
    `S.stream` and `S.keypoints.stream`, in `directory` (mirroring sub-folders) or beside each
    input."""
    from emonet_cli.analysis.detected import detect_file

    several = detection.max_faces > 1
    for path, subfolder in media:
        folder = directory / subfolder if directory is not None else path.parent
        if several:  # the overview is published last
            written = [folder / f"{path.stem}{FACES_SUFFIX}"]
        else:
            written = [folder / f"{path.stem}.keypoints.stream", folder / f"{path.stem}.stream"]
        if skip_existing and all(p.exists() for p in written):
            yield Outcome(path, "skipped")
            continue

        def work(path=path, folder=folder) -> Outcome:
            started = time.perf_counter()
            with progress(path) if progress else contextlib.nullcontext() as bar:
                streams = detect_file(path, detection, folder, **bar_callbacks(bar))
            return Outcome(
                path,
                "ok",
                outputs=streams.outputs,
                frames=streams.frames,
                frames_with_face=streams.frames_with_face,
                seconds=round(time.perf_counter() - started, 3),
                main="faces" if several else "stream",
                report=streams,
            )

        outcome = guarded(path, work)
        yield outcome
        if fail_fast and outcome.status == "error":
            return
