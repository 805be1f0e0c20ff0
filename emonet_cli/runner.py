"""Running many inputs: the per-input loop of `emonet analyze`, callable from Python.

`run_many` yields one `Outcome` per input, in order: analysed, skipped (results exist) or
failed (with the one-line reason). A failing input never stops the others unless `fail_fast`;
the model is loaded once, on the first input that needs it, and a weights problem ends the run
(it would fail every input the same way).
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from emonet_cli import __version__
from emonet_cli.analyze import analyze_file
from emonet_cli.boxes import BoxOptions, BoxSource
from emonet_cli.boxes.people import FACES_SUFFIX
from emonet_cli.errors import EmonetError
from emonet_cli.fileio import describe_os_error
from emonet_cli.pipeline import AnalysisSettings
from emonet_cli.selection import FrameSelection
from emonet_cli.writers import OutputOptions, is_complete

if TYPE_CHECKING:
    from emonet_cli.detection.source import DetectionSettings
    from emonet_cli.inference import Predictor


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """Which EmoNet to run and how: weights are found by the CLI's rules (see weights.py)."""

    weights: Path | None = None
    nclass: int | None = None
    offline: bool = False
    device: str = "auto"
    precision: str = "auto"
    progress: bool = False  # a download progress bar

    def load(self) -> tuple[Predictor, dict]:
        """The model ready to run, and what each summary JSON records about it."""
        from emonet_cli.checkpoint import load_model
        from emonet_cli.inference import Predictor, resolve_precision, select_device

        # A device that is not there (--device cuda without CUDA) or a precision it cannot
        # run fails here, in one line, before any weights are read: never a silent CPU run.
        device = select_device(self.device)
        resolve_precision(self.precision, device)
        loaded = load_model(self.weights, self.nclass, self.offline, progress=self.progress)
        provenance = {
            "tool": "emonet-cli",
            "version": __version__,
            "weights": str(loaded.path),
            "weights_sha256": loaded.sha256,
        }
        return Predictor(loaded.model, device, self.precision), provenance


@dataclass
class Outcome:
    """What became of one input: its files, or the one-line reason it failed."""

    input: Path
    status: str  # "ok", "skipped" or "error"
    outputs: list[Path] = field(default_factory=list)  # the main one last
    frames: int = 0
    frames_with_face: int = 0
    seconds: float = 0.0
    main: str = "summary"  # what the last output is, as --json names it
    report: object = None  # an AnalysisReport, or detect's BoxStreams
    error: str | None = None  # one line
    details: str | None = None  # the traceback of an unexpected error, for --debug

    def as_json(self) -> dict:
        document = {"input": str(self.input), "status": self.status}
        if self.status == "error":
            document["error"] = self.error
        elif self.status == "ok":
            document.update(
                {
                    self.main: str(self.outputs[-1]),
                    "outputs": [str(p) for p in self.outputs],
                    "frames": self.frames,
                    "frames_with_face": self.frames_with_face,
                    "seconds": self.seconds,
                }
            )
        return document

    def line(self) -> str:
        if self.status == "skipped":
            return f"skipped {self.input} (results exist)"
        if self.status == "error":
            return f"failed {self.input}: {self.error}"
        return (
            f"{self.input} -> {self.outputs[-1]} ({self.frames} frames, "
            f"{self.frames_with_face} with a face, {self.seconds:.1f} s)"
        )


ProgressFactory = Callable[[Path], contextlib.AbstractContextManager]


def guarded(path: Path, work: Callable[[], Outcome]) -> Outcome:
    """`work()`, with every error one input can cause turned into a failed Outcome."""
    try:
        return work()
    except EmonetError as exc:
        return Outcome(path, "error", error=str(exc))
    except OSError as exc:
        return Outcome(path, "error", error=f"{path}: {describe_os_error(exc)}")
    except MemoryError:
        return Outcome(path, "error", error=f"{path}: out of memory")
    except Exception as exc:
        return Outcome(
            path,
            "error",
            error=f"{path}: unexpected error: {type(exc).__name__}: {exc}",
            details=traceback.format_exc(),
        )


def bar_callbacks(bar, selection: FrameSelection | None = None) -> dict:
    """on_start / on_batch callbacks that drive a progress bar (or nothing) over the frames
    of an input, or those `selection` picks."""
    if bar is None:
        return {"on_start": None, "on_batch": None}

    def total(info) -> int:
        return info.frame_count if selection is None else selection.expected_frames(info)

    return {"on_start": lambda info: setattr(bar, "total", total(info)), "on_batch": bar.update}


def analyze_one(
    path: Path,
    source: BoxSource,
    predictor: Predictor,
    provenance: dict,
    *,
    settings: AnalysisSettings,
    options: OutputOptions,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Outcome:
    """Analyse one input with its faces from `source`, writing as `options` say; every error
    it can cause becomes a failed Outcome."""

    def work() -> Outcome:
        with progress(path) if progress else contextlib.nullcontext() as bar:
            report = analyze_file(
                path,
                predictor,
                source,
                settings,
                options,
                provenance=provenance,
                on_warning=on_warning,
                **bar_callbacks(bar, settings.selection),
            )
        summary = report.summary
        return Outcome(
            path,
            "ok",
            outputs=[Path(p) for p in report.outputs],
            frames=summary["frames"],
            frames_with_face=summary["frames_with_face"],
            seconds=summary["seconds"],
            report=report,
        )

    return guarded(path, work)


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


def mirrored(options: OutputOptions, subfolder: Path) -> OutputOptions:
    """Outputs of an input found in a sub-folder of a folder input go to the same sub-folder
    of the output folder, so that equal names in different folders do not clash."""
    if options.directory is None:
        return options
    return replace(options, directory=options.directory / subfolder)


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
) -> Iterator[Outcome]:
    """Analyse each (path, sub-folder) of `media` (as `video.find_media` lists them) and yield
    its Outcome. `progress(path)` may return a context manager with `total` and `update(n)`
    (a tqdm bar) to follow the frames of each input.

    With `executor`, a dask.distributed Client, each input is a task on its cluster and the
    Outcomes come in the order the tasks complete (see cluster.py; `progress` is not used)."""
    settings = settings or AnalysisSettings()
    options = options or OutputOptions()
    if executor is not None:
        from emonet_cli.cluster import run_on_cluster

        yield from run_on_cluster(
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
        return
    predictor = provenance = None
    for path, subfolder in media:
        try:
            source = boxes.source_for(path, subfolder)
        except EmonetError as exc:
            outcome = Outcome(path, "error", error=str(exc))
        else:
            written = mirrored(replace(options, box_stream=source.detect is not None), subfolder)
            if skip_existing and is_complete(path, written, settings.selection):
                yield Outcome(path, "skipped")
                continue
            if predictor is None:  # loaded on first need
                predictor, provenance = model.load()
            outcome = analyze_one(
                path,
                source,
                predictor,
                provenance,
                settings=settings,
                options=written,
                progress=progress,
                on_warning=on_warning,
            )
        yield outcome
        if fail_fast and outcome.status == "error":
            return


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
    from emonet_cli.detection.people import detect_people_file
    from emonet_cli.detection.run import detect_file

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
                if several:
                    streams = detect_people_file(path, detection, folder, **bar_callbacks(bar))
                    outputs = streams.paths
                else:
                    streams = detect_file(path, detection, folder, **bar_callbacks(bar))
                    outputs = [streams.keypoints, streams.boxes]
            return Outcome(
                path,
                "ok",
                outputs=outputs,
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
