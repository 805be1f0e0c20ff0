"""A video's per-frame results, gathered from the pipeline's batches, and the numbers NOVA's
annotations and streams are made of. Nothing here needs DISCOVER."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emonet_cli.faces.source import SAME_RATE_TOLERANCE
from emonet_cli.outputs.writers import ResultBatch

TIME_EPSILON = 1e-6


@dataclass
class VideoResults:
    """One row per decoded frame; rows without a face hold NaN, -1 or 0 as in ResultBatch."""

    fps: float
    time: np.ndarray  # (n,) float64 seconds
    face: np.ndarray  # (n,) bool
    face_conf: np.ndarray  # (n,) float32, 0 without a face
    expression: np.ndarray  # (n,) int, -1 without a face
    expression_conf: np.ndarray  # (n,) float32, 0 without a face
    valence: np.ndarray  # (n,) float32
    arousal: np.ndarray  # (n,) float32
    landmarks: np.ndarray | None  # (n, 136) float32 when gathered
    embedding: np.ndarray | None  # (n, 256) float32 when gathered

    def __len__(self) -> int:
        return len(self.time)


class FrameResults:
    """Gathers a video's results batch by batch. The few numbers per frame are always kept;
    landmarks (136 floats) and embeddings (256) only when an output needs them."""

    def __init__(self, fps: float, landmarks: bool = False, embedding: bool = False):
        self.fps = fps
        self.keep_landmarks = landmarks
        self.keep_embedding = embedding
        self._columns: dict[str, list[np.ndarray]] = {}

    def add(self, batch: ResultBatch) -> None:
        columns = {
            "time": batch.time,
            "face": batch.face,
            "face_conf": batch.face_conf,
            "expression": batch.expression,
            "expression_conf": batch.expression_conf,
            "valence": batch.valence,
            "arousal": batch.arousal,
        }
        if self.keep_landmarks:
            columns["landmarks"] = batch.landmarks.reshape(len(batch), -1)
        if self.keep_embedding:
            columns["embedding"] = batch.embedding
        for name, values in columns.items():
            self._columns.setdefault(name, []).append(values)

    def __len__(self) -> int:
        return sum(len(part) for part in self._columns.get("time", []))

    def finish(self) -> VideoResults:
        joined = {name: np.concatenate(parts) for name, parts in self._columns.items()}
        return VideoResults(
            fps=self.fps,
            landmarks=joined.pop("landmarks", None),
            embedding=joined.pop("embedding", None),
            **joined,
        )


def milliseconds(seconds: np.ndarray) -> np.ndarray:
    """Times as DISCOVER keeps them in memory: whole milliseconds (int32), rounded."""
    return np.rint(np.asarray(seconds, dtype=np.float64) * 1000.0).astype(np.int32)


def same_rate(a: float, b: float) -> bool:
    """Rates equal as DISCOVER writes them (3 decimals: 29.970 for 30000/1001)."""
    return abs(a - b) < SAME_RATE_TOLERANCE


def held_frames(time: np.ndarray, fps: float, sample_rate: float) -> np.ndarray:
    """For a continuous annotation at `sample_rate` other than the video's: the frame shown at
    each sample's time k / sample_rate, for every sample that starts before the video ends (a
    0.92 s clip at 1 Hz has 1 sample)."""
    if len(time) == 0:
        return np.zeros(0, dtype=np.int64)
    duration = float(time[-1]) + 1.0 / fps
    count = max(1, math.ceil(duration * sample_rate - TIME_EPSILON))
    sample_times = np.arange(count) / sample_rate
    frames = np.searchsorted(time, sample_times + TIME_EPSILON, side="right") - 1
    return np.clip(frames, 0, len(time) - 1)


def dimension_samples(
    results: VideoResults, dimension: str, sample_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Score and confidence of a continuous annotation: per frame at the video's rate (score NaN
    and confidence 0 without a face; the confidence is the face box's), else held per sample."""
    score, conf = getattr(results, dimension), results.face_conf
    if same_rate(sample_rate, results.fps):
        return score, conf
    frames = held_frames(results.time, results.fps, sample_rate)
    return score[frames], conf[frames]
