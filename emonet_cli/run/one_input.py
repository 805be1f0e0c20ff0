"""One input of a run: the model it runs (`ModelOptions`), the analysis of one input into its
files, and the `Outcome` that every error one input can cause is turned into. Local runs
(runner.run_many) and Dask workers (cluster) both go through `analyze_one`."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from emonet_cli import __version__
from emonet_cli.analysis.analyze import analyze_file, asked_record, outputs_of
from emonet_cli.analysis.pipeline import AnalysisSettings
from emonet_cli.errors import DeviceMemoryError, EmonetError
from emonet_cli.faces import BoxOptions, BoxSource
from emonet_cli.formats.fileio import describe_os_error
from emonet_cli.media.selection import FrameSelection
from emonet_cli.models import registry
from emonet_cli.outputs.writers import OutputOptions, is_complete

if TYPE_CHECKING:
    from emonet_cli.models.emonet.inference import Predictor


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """Which model to run and how: `family` names its entry in models.registry; weights are
    found by the CLI's rules (see weights.py)."""

    family: str = registry.DEFAULT_FAMILY
    weights: Path | None = None
    nclass: int | None = None
    offline: bool = False
    device: str = "auto"
    precision: str = "auto"
    progress: bool = False  # a download progress bar

    def load(self) -> tuple[Predictor, dict]:
        """The model ready to run, and what each summary JSON records about it."""
        from emonet_cli.devices import resolve_precision, select_device

        family = registry.family(self.family)
        # A device that is not there (--device cuda without CUDA) or a precision it cannot
        # run fails here, in one line, before any weights are read: never a silent CPU run.
        device = select_device(self.device)
        resolve_precision(self.precision, device)
        loaded = family.load(self.weights, self.nclass, self.offline, progress=self.progress)
        provenance = {
            "tool": "emonet-cli",
            "version": __version__,
            "weights": str(loaded.path),
            "weights_sha256": loaded.sha256,
        }
        return family.predictor_for(loaded, device, self.precision), provenance


class LoadedModel:
    """The model of a run, loaded once on first need: the first analysis, or the first
    --skip-existing check that must compare the weights' SHA-256 with a summary's."""

    def __init__(self, model: ModelOptions):
        self.model = model
        self._loaded: tuple[Predictor, dict] | None = None

    def get(self) -> tuple[Predictor, dict]:
        if self._loaded is None:
            self._loaded = self.model.load()
        return self._loaded

    def if_at_hand(self) -> tuple[Predictor, dict] | None:
        """The model where it can be had without a download, else None (its weights are not
        here, or its device is missing): --skip-existing then compares what it can without
        it, and the run's first analysis, if any, says what is wrong."""
        if self._loaded is None:
            try:
                self._loaded = replace(self.model, offline=True).load()
            except EmonetError:
                return None
        return self._loaded


def already_done(
    path: Path,
    source: BoxSource,
    options: OutputOptions,
    settings: AnalysisSettings,
    model: LoadedModel,
) -> bool:
    """Whether --skip-existing skips `path`: its results are complete and their summary
    records the model, weights, classes and options asked now (loading the model only when
    there are complete results to compare)."""
    if not is_complete(path, options, settings.selection):
        return False
    predictor, provenance = model.if_at_hand() or (None, None)
    asked = asked_record(predictor, provenance, settings, source, options.family)
    return is_complete(path, options, settings.selection, asked)


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
    report: object = None  # an AnalysisReport, or detect's DetectedStreams
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
    except DeviceMemoryError as exc:  # every input would fail alike: the run ends here
        raise DeviceMemoryError(f"{path}: {exc}") from None
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


def mirrored(options: OutputOptions, subfolder: Path) -> OutputOptions:
    """Outputs of an input found in a sub-folder of a folder input go to the same sub-folder
    of the output folder, so that equal names in different folders do not clash."""
    if options.directory is None:
        return options
    return replace(options, directory=options.directory / subfolder)


@dataclass(frozen=True)
class ToAnalyse:
    """An input the run analyses: its box source and the outputs it writes."""

    path: Path
    source: BoxSource
    options: OutputOptions


def prepared(
    media: Sequence[tuple[Path, Path]],
    *,
    boxes: BoxOptions,
    options: OutputOptions,
    settings: AnalysisSettings,
    skip_existing: bool,
    loaded: LoadedModel,
) -> Iterator[Outcome | ToAnalyse]:
    """Each input of `media` as a run meets it, in order: its Outcome where it needs no
    analysis (its boxes cannot be had, or --skip-existing finds its results), else what to
    analyse. One input at a time or several in flight, a run goes through this."""
    for path, subfolder in media:
        try:
            source = boxes.source_for(path, subfolder)
        except EmonetError as exc:
            yield Outcome(path, "error", error=str(exc))
            continue
        written = mirrored(outputs_of(options, source), subfolder)
        if skip_existing and already_done(path, source, written, settings, loaded):
            yield Outcome(path, "skipped")
        else:
            yield ToAnalyse(path, source, written)
