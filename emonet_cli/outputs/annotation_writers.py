"""NOVA annotations of an analysis, written batch by batch: the expression (discrete), valence,
arousal and dominance (continuous), and one discrete annotation per category of a family that
gives several labels at once (EMOTIC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emonet_cli.constants import default_class_colors
from emonet_cli.formats.annotations import (
    ContinuousAnnotationWriter,
    ContinuousScheme,
    DiscreteAnnotationWriter,
    DiscreteScheme,
)
from emonet_cli.formats.fileio import WrappedWriter
from emonet_cli.media.selection import laid_out
from emonet_cli.outputs.context import WriterContext
from emonet_cli.outputs.results import ResultBatch, category_slug


class ExpressionAnnotationWriter(WrappedWriter):
    """`S.expression.annotation`: a discrete NOVA annotation, one segment per frame from its
    time to the next frame's, or per run of equal labels with `merge`. No-face frames are
    garbage segments (id -1, confidence 0)."""

    def __init__(self, path: Path, context: WriterContext):
        classes = context.class_set
        scheme = DiscreteScheme("emotion", list(classes.names), list(classes.colors))
        ftype = context.options.annotation_ftype
        self._writer = DiscreteAnnotationWriter(path, scheme, ftype=ftype, **context.meta)
        self.paths = self._writer.paths
        self.frame_duration = 1.0 / context.frame_rate
        self.merge = context.options.merge
        self._open: list | None = None  # [start, label, conf sum, count] of the pending segment

    def _emit(self, end: float) -> None:
        start, label, conf_sum, count = self._open
        conf = conf_sum / count if label >= 0 else 0.0
        self._writer.append(np.array([start]), np.array([end]), np.array([label]), np.array([conf]))

    def add(self, batch: ResultBatch) -> None:
        for time, label, conf in zip(batch.time, batch.expression, batch.expression_conf):
            label = int(label)
            if self._open is not None:
                if self.merge and self._open[1] == label:
                    self._open[2] += float(conf)
                    self._open[3] += 1
                    continue
                self._emit(float(time))
            self._open = [float(time), label, float(conf), 1]
        self._last_time = float(batch.time[-1]) if len(batch) else None

    def finish(self) -> None:
        if self._open is not None:
            self._emit(last_frame_end(self._last_time, self.frame_duration))
            self._open = None
        self._writer.finish()


def last_frame_end(time: float, frame_duration: float) -> float:
    """Where the last frame's segment ends: one nominal frame after it starts."""
    return round(float(time) + frame_duration, 6)


def frame_segments(time: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of one segment per frame, as ExpressionAnnotationWriter writes them
    without `merge`: from the frame's time to the next frame's."""
    if len(time) == 0:
        return time.copy(), time.copy()
    return time.copy(), np.append(time[1:], last_frame_end(time[-1], 1.0 / fps))


class DimensionAnnotationWriter(WrappedWriter):
    """`S.valence.annotation`, `S.arousal.annotation` or `S.dominance.annotation`: continuous,
    one sample per frame at the video's frame rate in [-1, 1]; no-face samples are NaN with
    confidence 0."""

    def __init__(self, path: Path, context: WriterContext, dimension: str):
        self.dimension = dimension
        scheme = ContinuousScheme(dimension, sr=context.frame_rate, min=-1.0, max=1.0)
        ftype = context.options.annotation_ftype
        self._writer = ContinuousAnnotationWriter(path, scheme, ftype=ftype, **context.meta)
        self.paths = self._writer.paths
        self.timeline = context.timeline()

    def add(self, batch: ResultBatch) -> None:
        score = getattr(batch, self.dimension)
        rows = self.timeline.rows(batch.frame, batch.time) if self.timeline else None
        self._writer.append(laid_out(score, rows, np.nan), laid_out(batch.face_conf, rows, 0.0))


class CategoryAnnotationWriter(WrappedWriter):
    """`S.<category>.annotation` (e.g. `S.happiness.annotation`): a discrete NOVA annotation
    whose scheme has the one class, with a segment for each frame where the category is
    reported (its score above its threshold), or per run of such frames with `merge`; the
    confidence is the score clipped to [0, 1]. NOVA shows the 26 categories as 26 tiers, each
    marked where it holds: several can hold at once, which one discrete scheme cannot say."""

    def __init__(self, path: Path, context: WriterContext, index: int):
        self.index = index
        name = context.options.model.categories[index]
        color = default_class_colors(context.options.model.categories)[index]
        scheme = DiscreteScheme(category_slug(name), [name], [color])
        ftype = context.options.annotation_ftype
        self._writer = DiscreteAnnotationWriter(path, scheme, ftype=ftype, **context.meta)
        self.paths = self._writer.paths
        self.frame_duration = 1.0 / context.frame_rate
        self.merge = context.options.merge
        self._open: list | None = None  # [start, score sum, count] of the pending segment
        self._last_time = 0.0

    def _emit(self, end: float) -> None:
        start, score_sum, count = self._open
        conf = min(max(score_sum / count, 0.0), 1.0)
        self._writer.append(np.array([start]), np.array([end]), np.array([0]), np.array([conf]))
        self._open = None

    def add(self, batch: ResultBatch) -> None:
        held = batch.category_set[:, self.index]
        scores = batch.categories[:, self.index]
        for time, holds, score in zip(batch.time, held, scores):
            if self._open is not None:
                if self.merge and holds:
                    self._open[1] += float(score)
                    self._open[2] += 1
                    continue
                self._emit(float(time))  # the pending frame lasts until this one
            if holds:
                self._open = [float(time), float(score), 1]
        if len(batch):
            self._last_time = float(batch.time[-1])

    def finish(self) -> None:
        if self._open is not None:
            self._emit(last_frame_end(self._last_time, self.frame_duration))
        self._writer.finish()
