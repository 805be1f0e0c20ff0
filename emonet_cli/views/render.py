"""`emonet render`: the video with its results drawn on it, frame by frame (see `painter`).

Results come from an earlier `emonet analyze` (`S.csv`, `S.landmarks.stream`) or, without them,
from the model in memory; both become the same FrameResults. Only one decoded frame is held at
a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from emonet_cli.analysis.pipeline import Analysis, AnalysisSettings
from emonet_cli.constants import N_LANDMARKS
from emonet_cli.errors import FormatError, InputError
from emonet_cli.faces import BoxSource
from emonet_cli.faces.people import People, open_people
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.frames import Frame, MediaInfo
from emonet_cli.media.video import MediaReader
from emonet_cli.models.emonet.inference import Predictor
from emonet_cli.outputs.results import Results, read_results
from emonet_cli.outputs.writers import CSV_OUTPUT, LANDMARKS_OUTPUT, output_path
from emonet_cli.views.painter import FramePainter, FrameResult, Trail
from emonet_cli.views.rendered_video import write_rendered


class ResultColumns(Protocol):
    """Per-frame results as columns, one row per frame: a batch from the model (ResultBatch)
    or the table of an earlier analysis (Results)."""

    face: np.ndarray
    expression: np.ndarray
    probabilities: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray

    def __len__(self) -> int: ...


def frame_results(columns: ResultColumns, landmarks: np.ndarray | None) -> Iterator[FrameResult]:
    """One FrameResult per row of `columns`; `landmarks` is (n, 68, 2), or None when unknown."""
    usable = getattr(columns, "usable", None)  # None: results written before the column
    for i in range(len(columns)):
        yield FrameResult(
            face=bool(columns.face[i]),
            expression=int(columns.expression[i]),
            probabilities=columns.probabilities[i],
            valence=float(columns.valence[i]),
            arousal=float(columns.arousal[i]),
            landmarks=None if landmarks is None else landmarks[i],
            usable=None if usable is None else bool(usable[i]),
        )


@dataclass
class StoredResults:
    """The results of an earlier `emonet analyze` of the video."""

    table: Results
    landmarks: np.ndarray | None  # (n, 68, 2)

    def __iter__(self) -> Iterator[FrameResult]:
        return frame_results(self.table, self.landmarks)


@dataclass
class RenderReport:
    output: Path
    frames: int  # frames written
    fps: float  # of the output
    size: tuple[int, int]  # width, height of the output
    results: str  # where the results came from: the CSV's path, or "the model"


def count_frames(video: Path) -> int:
    with MediaReader(video) as reader:
        return sum(1 for _ in reader)


def find_stored_results(
    video: Path,
    info: MediaInfo,
    results_dir: Path | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> StoredResults | None:
    """The `S.csv` (and `S.landmarks.stream`) of `video` in `results_dir` (default: beside it)
    when they cover every decoded frame; None when there are none or they are incomplete."""
    warn = on_warning or (lambda message: None)
    csv_path = output_path(video, results_dir, CSV_OUTPUT.suffix)
    if not csv_path.is_file():
        return None
    table = read_results(csv_path)
    # The container's frame count is usually exact; decode to count only when it disagrees.
    if len(table) != info.frame_count and len(table) != count_frames(video):
        warn(f"{csv_path} has {len(table)} rows, not one per frame of {video}: running the model")
        return None
    landmarks_path = output_path(video, results_dir, LANDMARKS_OUTPUT.suffix)
    if not landmarks_path.is_file():
        warn(f"{landmarks_path.name} not found: landmarks are not drawn (analyze --landmarks)")
        return StoredResults(table, None)
    stream = read_stream(landmarks_path)
    if stream.data.shape != (len(table), 2 * N_LANDMARKS):
        raise FormatError(
            f"{landmarks_path}: expected {len(table)} x {2 * N_LANDMARKS} values to match "
            f"{csv_path.name}, found {stream.data.shape[0]} x {stream.data.shape[1]}"
        )
    return StoredResults(table, stream.data.reshape(len(table), N_LANDMARKS, 2))


def results_from_model(analysis: Analysis) -> Iterator[FrameResult]:
    """The model's results, frame by frame, as the analysis runs."""
    for batch in analysis:
        yield from frame_results(batch, batch.landmarks)


def face_box(people: People, frame: Frame) -> np.ndarray | None:
    """The frame's box (x1, y1, x2, y2 in pixels) of the one person, whatever its confidence:
    whether a face was analysed is the results' call."""
    box = people.faces([frame])[0][None].box
    return box if box is not None and np.isfinite(box).all() else None


def render_frames(
    video: Path,
    output: Path,
    results: Iterable[FrameResult],
    people: People,
    class_names: tuple[str, ...],
    every: int = 1,
    max_width: int | None = None,
    on_frame: Callable[[int], None] | None = None,
    class_colors: tuple[str, ...] | None = None,
) -> tuple[int, float, tuple[int, int]]:
    """Write the annotated video of `video`, one result per decoded frame, every `every`th frame
    kept (at fps / every, so the timing stays right). Returns frames written, fps and size."""
    trail = Trail()

    def paint(painter: FramePainter, frame: Frame, result: FrameResult, shown: bool):
        trail.add(frame.time, result)
        if shown:
            box = face_box(people, frame)
            return painter.paint(frame.image, result, box, trail, frame.time, frame.index)
        return None

    return write_rendered(
        video, output, results, lambda w, h: FramePainter(w, h, class_names, class_colors),
        paint, every, max_width, on_frame,
    )  # fmt: skip


def render_file(
    video: str | Path,
    output: str | Path,
    box_source: BoxSource,
    load_predictor: Callable[[], Predictor],
    settings: AnalysisSettings | None = None,
    results_dir: Path | None = None,
    reanalyze: bool = False,
    every: int = 1,
    max_width: int | None = None,
    on_start: Callable[[MediaInfo], None] | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> RenderReport:
    """Render `video` with its results: those of an earlier analysis when complete (unless
    `reanalyze`), else the model's, run in memory (`load_predictor` is called only then)."""
    video, output = Path(video), Path(output)
    settings = settings or AnalysisSettings()
    if every < 1:
        raise ValueError("every must be at least 1")
    with MediaReader(video) as probe:
        info = probe.info
    if info.is_image:
        raise InputError(f"{video}: emonet render takes a video, not an image")
    people = open_people(box_source, info)
    for message in people.warnings:
        if on_warning is not None:
            on_warning(message)
    if people.several:
        return _render_people(
            video, output, info, box_source, load_predictor, settings, results_dir, reanalyze,
            every, max_width, on_start, on_frame,
        )  # fmt: skip
    stored = None if reanalyze else find_stored_results(video, info, results_dir, on_warning)
    if on_start is not None:
        on_start(info)
    if stored is not None:
        written, fps, size = render_frames(
            video, output, stored, people, stored.table.class_names, every, max_width, on_frame
        )
        return RenderReport(output, written, fps, size, str(stored.table.path))
    predictor = load_predictor()
    analysis = Analysis(video, predictor, box_source, settings)
    model_results = results_from_model(analysis)
    try:
        written, fps, size = render_frames(
            video,
            output,
            model_results,
            people,
            predictor.classes.names,
            every,
            max_width,
            on_frame,
            predictor.classes.colors,
        )
    finally:
        model_results.close()  # stops the decoding thread before its reader is closed
        analysis.close()
    return RenderReport(output, written, fps, size, "the model")


def _render_people(
    video, output, info, box_source, load_predictor, settings, results_dir, reanalyze, every,
    max_width, on_start, on_frame,
) -> RenderReport:  # fmt: skip
    """render_file for a source of several people."""
    from emonet_cli.views.render_people import (
        people_from_model,
        render_people_frames,
        stored_people,
    )

    stored = None if reanalyze else stored_people(video, info, results_dir)
    if on_start is not None:
        on_start(info)
    if stored is not None:
        names = _stored_class_names(video, results_dir)
        written, fps, size = render_people_frames(
            video, output, stored, names, every, max_width, on_frame
        )
        return RenderReport(output, written, fps, size, "the stored per-person results")
    predictor = load_predictor()
    analysis = Analysis(video, predictor, box_source, settings)
    model_results = people_from_model(analysis)
    try:
        written, fps, size = render_people_frames(
            video, output, model_results, predictor.classes.names, every, max_width,
            on_frame,
        )  # fmt: skip
    finally:
        model_results.close()
        analysis.close()
    return RenderReport(output, written, fps, size, "the model")


def _stored_class_names(video: Path, results_dir: Path | None) -> tuple[str, ...]:
    import json

    from emonet_cli.outputs.writers import summary_path

    summary = json.loads(summary_path(video, results_dir).read_text(encoding="utf-8"))
    first = summary["people"][0]["person"] if summary["people"] else None
    if first is None:
        return tuple(summary["classes"])
    return read_results(output_path(video, results_dir, CSV_OUTPUT.suffix, first)).class_names
