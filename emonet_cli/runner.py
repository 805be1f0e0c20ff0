"""Running many inputs: the per-input loop of `emonet analyze`, callable from Python.

`run_many` yields one `Outcome` per input, in order: analysed, skipped (results exist) or
failed (with the one-line reason). A failing input never stops the others unless `fail_fast`;
the model is loaded once, on the first input that needs it, and a weights problem ends the run
(it would fail every input the same way).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from emonet_cli import __version__
from emonet_cli.boxes import BoxOptions
from emonet_cli.errors import EmonetError
from emonet_cli.fileio import describe_os_error
from emonet_cli.pipeline import AnalysisReport, AnalysisSettings, analyze_file
from emonet_cli.writers import OutputOptions, is_complete

if TYPE_CHECKING:
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
        from emonet_cli.inference import Predictor

        loaded = load_model(self.weights, self.nclass, self.offline, progress=self.progress)
        provenance = {
            "tool": "emonet-cli",
            "version": __version__,
            "weights": str(loaded.path),
            "weights_sha256": loaded.sha256,
        }
        return Predictor(loaded.model, self.device, self.precision), provenance


@dataclass
class Outcome:
    """What became of one input."""

    input: Path
    status: str  # "ok", "skipped" or "error"
    report: AnalysisReport | None = None
    error: str | None = None  # one line
    details: str | None = None  # the traceback of an unexpected error, for --debug

    def as_json(self) -> dict:
        document = {"input": str(self.input), "status": self.status}
        if self.status == "error":
            document["error"] = self.error
        elif self.report is not None:
            summary = self.report.summary
            document.update(
                summary=str(self.report.outputs[-1]),
                outputs=[str(p) for p in self.report.outputs],
                frames=summary["frames"],
                frames_with_face=summary["frames_with_face"],
                seconds=summary["seconds"],
            )
        return document

    def line(self) -> str:
        if self.status == "skipped":
            return f"skipped {self.input} (results exist)"
        if self.status == "error":
            return f"failed {self.input}: {self.error}"
        summary = self.report.summary
        return (
            f"{self.input} -> {self.report.outputs[-1]} ({summary['frames']} frames, "
            f"{summary['frames_with_face']} with a face, {summary['seconds']:.1f} s)"
        )


ProgressFactory = Callable[[Path], contextlib.AbstractContextManager]


def analyze_one(
    path: Path,
    subfolder: Path,
    predictor: Predictor,
    provenance: dict,
    *,
    boxes: BoxOptions,
    settings: AnalysisSettings,
    options: OutputOptions,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Outcome:
    """Analyse one input found in `subfolder` of a folder input, writing as `options` say;
    every error it can cause becomes a failed Outcome."""
    try:
        source = boxes.source_for(path, subfolder)
        with progress(path) if progress else contextlib.nullcontext() as bar:
            report = analyze_file(
                path,
                predictor,
                source,
                settings,
                options,
                provenance=provenance,
                on_start=None
                if bar is None
                else lambda info: setattr(bar, "total", info.frame_count),
                on_batch=None if bar is None else bar.update,
                on_warning=on_warning,
            )
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
    return Outcome(path, "ok", report=report)


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
) -> Iterator[Outcome]:
    """Analyse each (path, sub-folder) of `media` (as `video.find_media` lists them) and yield
    its Outcome. `progress(path)` may return a context manager with `total` and `update(n)`
    (a tqdm bar) to follow the frames of each input."""
    settings = settings or AnalysisSettings()
    options = options or OutputOptions()
    predictor = provenance = None
    for path, subfolder in media:
        mirrored = options
        if options.directory is not None:  # mirror the input folder tree: no name clashes
            mirrored = replace(options, directory=options.directory / subfolder)
        if skip_existing and is_complete(path, mirrored):
            yield Outcome(path, "skipped")
            continue
        if predictor is None:  # loaded on first need
            predictor, provenance = model.load()
        outcome = analyze_one(
            path,
            subfolder,
            predictor,
            provenance,
            boxes=boxes,
            settings=settings,
            options=mirrored,
            progress=progress,
            on_warning=on_warning,
        )
        yield outcome
        if fail_fast and outcome.status == "error":
            return
