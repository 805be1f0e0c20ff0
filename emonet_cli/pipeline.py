"""The analysis chain for one input: decode -> box lookup -> align -> batch -> model -> writers.

Decoding and aligning run in a background thread that fills a small queue of batches while
the model works on the previous one; memory stays bounded by that queue, whatever the length
of the video.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from emonet_cli.align import (
    affine_from_box,
    affine_full_frame,
    apply_affine,
    crop_face,
    invert_affine,
)
from emonet_cli.boxes import BoxSource, FaceLookup, FrameFace, open_lookup
from emonet_cli.constants import DEFAULT_MIN_FACE_CONF, EMBEDDING_SIZE, N_LANDMARKS
from emonet_cli.errors import InputError, ModelOutputError
from emonet_cli.fileio import remove_partial_files
from emonet_cli.inference import Predictions, Predictor, softmax
from emonet_cli.results import ResultBatch, Summary, TemporalSmoother
from emonet_cli.video import MediaInfo, MediaReader
from emonet_cli.writers import (
    OutputOptions,
    WriterContext,
    close_all,
    input_identity,
    open_writers,
    planned_outputs,
    summary_path,
    write_json,
)

QUEUE_BATCHES = 2
MAX_PENDING_FRAMES = 256
LOOKUP_FRAMES = 16  # frames per face lookup: the detector's batch


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings:
    """How faces are analysed: model batch size, the box confidence that counts as a face,
    and the published temporal smoothing."""

    batch_size: int = 8
    min_face_conf: float = DEFAULT_MIN_FACE_CONF
    smooth: bool = False


@dataclass
class _PendingBatch:
    """Frames decoded and aligned, waiting for the model."""

    frame: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    face_conf: list[float] = field(default_factory=list)
    face_rows: list[int] = field(default_factory=list)  # rows that carry a crop
    crops: list[np.ndarray] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)
    detections: list[np.ndarray | None] = field(default_factory=list)  # a detector's, per frame

    def __len__(self) -> int:
        return len(self.frame)


def face_matrix(face: FrameFace, min_conf: float) -> tuple[np.ndarray | None, float]:
    """The affine for a frame's face and its confidence; None and 0 when it is no usable face."""
    if face.whole_frame:
        return affine_full_frame(face.box[2], face.box[3]), face.conf
    if not face.usable(min_conf):
        return None, 0.0
    return affine_from_box(face.box), face.conf


def _decode_and_align(
    reader: MediaReader,
    lookup: FaceLookup,
    min_face_conf: float,
    batch_size: int,
    out: queue.Queue,
    stop: threading.Event,
) -> None:
    """Producer thread: fills `out` with _PendingBatch objects, then None; an exception is
    passed on to the consumer instead."""
    try:
        pending = _PendingBatch()
        frames = iter(reader)
        # Faces are looked up a chunk of frames at a time, so that a detector runs batched.
        while chunk := list(itertools.islice(frames, LOOKUP_FRAMES)):
            if stop.is_set():
                return
            for frame, face in zip(chunk, lookup.faces(chunk)):
                matrix, conf = face_matrix(face, min_face_conf)
                pending.frame.append(frame.index)
                pending.time.append(frame.time)
                pending.face_conf.append(conf)
                pending.detections.append(face.detection)
                if matrix is not None:
                    pending.face_rows.append(len(pending) - 1)
                    pending.crops.append(crop_face(frame.image, matrix))
                    pending.matrices.append(matrix)
                # Frames without a face still flush: memory stays bounded in a faceless stretch.
                if len(pending.crops) >= batch_size or len(pending) >= MAX_PENDING_FRAMES:
                    out.put(pending)
                    pending = _PendingBatch()
        if len(pending):
            out.put(pending)
        out.put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def _iter_pending(
    reader: MediaReader, lookup: FaceLookup, min_face_conf: float, batch_size: int
) -> Iterator[_PendingBatch]:
    batches: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()
    worker = threading.Thread(
        target=_decode_and_align,
        args=(reader, lookup, min_face_conf, batch_size, batches, stop),
        name="emonet-decode",
        daemon=True,
    )
    worker.start()
    try:
        while True:
            item = batches.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                batches.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class Analysis:
    """Streams one video or image through the model, yielding ResultBatch objects in frame order."""

    def __init__(
        self,
        path: str | Path,
        predictor: Predictor,
        box_source: BoxSource,
        settings: AnalysisSettings | None = None,
    ):
        self.settings = settings or AnalysisSettings()
        if self.settings.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.predictor = predictor
        self.reader = MediaReader(path)
        self.info = self.reader.info
        try:
            self.lookup = open_lookup(box_source, self.info)
        except BaseException:
            self.reader.close()
            raise
        self.smoother = TemporalSmoother() if self.settings.smooth else None

    def warnings(self) -> list[str]:
        return self.lookup.warnings()

    def __iter__(self) -> Iterator[ResultBatch]:
        for pending in _iter_pending(
            self.reader, self.lookup, self.settings.min_face_conf, self.settings.batch_size
        ):
            yield self._run(pending)

    def _run(self, pending: _PendingBatch) -> ResultBatch:
        n, nclass = len(pending), self.predictor.nclass
        raw = np.full((n, nclass + 2), np.nan)
        landmarks = np.full((n, N_LANDMARKS, 2), np.nan, dtype=np.float32)
        embedding = np.full((n, EMBEDDING_SIZE), np.nan, dtype=np.float32)
        face = np.zeros(n, dtype=bool)
        if pending.crops:
            rows = np.asarray(pending.face_rows)
            predictions = self.predictor(np.stack(pending.crops))
            self._check_finite(predictions, np.asarray(pending.frame)[rows])
            face[rows] = True
            raw[rows, :nclass] = predictions.expression
            raw[rows, nclass] = predictions.valence
            raw[rows, nclass + 1] = predictions.arousal
            embedding[rows] = predictions.embedding
            for row, crop_xy, matrix in zip(rows, predictions.landmarks, pending.matrices):
                landmarks[row] = apply_affine(invert_affine(matrix), crop_xy)
        if self.smoother is not None:
            raw = self.smoother(raw, face)
        probabilities = np.full((n, nclass), np.nan, dtype=np.float32)
        expression = np.full(n, -1, dtype=np.int64)
        if face.any():
            probabilities[face] = softmax(raw[face, :nclass])
            expression[face] = probabilities[face].argmax(axis=1)
        return ResultBatch(
            frame=np.asarray(pending.frame, dtype=np.int64),
            time=np.asarray(pending.time, dtype=np.float64),
            face=face,
            face_conf=np.where(face, pending.face_conf, 0.0).astype(np.float32),
            expression=expression,
            probabilities=probabilities,
            valence=raw[:, nclass].astype(np.float32),
            arousal=raw[:, nclass + 1].astype(np.float32),
            landmarks=landmarks,
            embedding=embedding,
            detection=_stacked_detections(pending.detections),
        )

    def _check_finite(self, predictions: Predictions, frames: np.ndarray) -> None:
        """Fail this input on NaN or infinite outputs (broken weights, fp16 overflow), which
        would otherwise be written as results or trip up the writers."""
        heads = (predictions.expression, predictions.valence, predictions.arousal)
        outputs = np.column_stack(heads)
        bad = np.flatnonzero(~np.isfinite(outputs).all(axis=1))
        if bad.size:
            kind = "NaN" if np.isnan(outputs[bad[0]]).any() else "infinite"
            raise ModelOutputError(
                f"{self.info.path}: the model's outputs are not finite ({kind}) at frame "
                f"{frames[bad[0]]}: the weights may be broken; with fp16, try --precision fp32"
            )

    def close(self) -> None:
        self.reader.close()


def _stacked_detections(detections: list[np.ndarray | None]) -> np.ndarray | None:
    """(n, 17) what a detector kept for each frame; None when the faces came from elsewhere."""
    if not detections or detections[0] is None:
        return None
    return np.stack(detections).astype(np.float32)


@dataclass
class AnalysisReport:
    input: Path
    outputs: list[Path]
    summary: dict
    warnings: list[str]


def analyze_file(
    path: str | Path,
    predictor: Predictor,
    box_source: BoxSource,
    settings: AnalysisSettings | None = None,
    options: OutputOptions | None = None,
    provenance: dict | None = None,
    on_start: Callable[[MediaInfo], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> AnalysisReport:
    """Analyse one video or image and write its outputs; returns what was written.

    `provenance` (weights file and SHA-256, tool version...) goes into the summary JSON as is.
    The callbacks let a front end show progress: `on_start` with the media's info, `on_batch`
    with the number of frames done in each batch.
    """
    started = time.perf_counter()
    path = Path(path)
    settings = settings or AnalysisSettings()
    # Detected faces are written as a box stream, so that the analysis can be repeated.
    options = replace(options or OutputOptions(), box_stream=box_source.detect is not None)
    # closing() releases the decoder on every way out, errors in the set-up included.
    with contextlib.closing(Analysis(path, predictor, box_source, settings)) as analysis:
        info = analysis.info
        nclass = predictor.nclass
        warnings = analysis.warnings()
        for message in warnings:
            if on_warning is not None:
                on_warning(message)
        if on_start is not None:
            on_start(info)
        for planned in planned_outputs(path, options):
            for name in (planned, planned.with_name(planned.name + "~")):
                remove_partial_files(name)
        meta = {
            "role": path.stem,
            "annotator": "emonet",
            "description": f"EmoNet ({nclass} classes) on {path.name}",
        }
        summary = Summary(predictor.classes.names)
        writers = open_writers(WriterContext(info, nclass, options, meta, predictor.classes))
        try:
            for batch in analysis:
                for writer in writers:
                    writer.add(batch)
                summary.add(batch)
                if on_batch is not None:
                    on_batch(len(batch))
            if summary.frames == 0:
                raise InputError(f"{path}: no frame could be decoded")
            close_all(writers)
        except BaseException:
            for writer in writers:
                writer.abort()
            raise

    document = {
        "input": str(path),
        "input_file": input_identity(path),
        **(provenance or {}),
        "nclass": nclass,
        "classes": list(summary.class_names),
        "precision": predictor.precision,
        "device": str(predictor.device),
        "batch_size": settings.batch_size,
        "min_face_conf": settings.min_face_conf,
        "smooth": settings.smooth,
        "boxes": box_source.describe(),
        "media": {
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "is_image": info.is_image,
        },
        **({"detector": box_source.detect.provenance()} if box_source.detect else {}),
        **summary.totals(),
        "warnings": warnings,
        "outputs": [str(p) for writer in writers for p in writer.paths],
        "seconds": round(time.perf_counter() - started, 3),
    }
    json_path = write_json(summary_path(path, options.directory), document)
    return AnalysisReport(path, [*document["outputs"], json_path], document, warnings)
