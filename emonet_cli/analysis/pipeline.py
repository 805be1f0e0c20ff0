"""The analysis chain for one input: decode -> faces -> align -> batch -> model -> writers.

`Analysis` takes the batches of `feed.feed` (decode -> faces -> crops, made in a background
thread) through the model, and hands on each person's results with what each frame is worth
(head pose from the landmarks or keypoints, face size, sharpness, `usable`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet_cli.analysis.feed import (
    MAX_PENDING_FRAMES,
    PendingBatch,
    feed,
    pending_in_background,
)
from emonet_cli.constants import DEFAULT_MIN_FACE_CONF, EMBEDDING_SIZE, N_LANDMARKS
from emonet_cli.errors import ModelOutputError
from emonet_cli.faces import BoxSource
from emonet_cli.faces.align import ModelInput, apply_affine, invert_affine
from emonet_cli.faces.people import open_people
from emonet_cli.faces.pose import NO_POSE, pose_from_keypoints, pose_from_landmarks
from emonet_cli.faces.quality import UsableLimits
from emonet_cli.media.tuning import decoder_threads_beside
from emonet_cli.media.video import FrameSelection, MediaReader
from emonet_cli.models.predictions import Predictor, softmax
from emonet_cli.models.registry import DEFAULT_FAMILY, family
from emonet_cli.outputs.results import ResultBatch, TemporalSmoother


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings:
    """How faces are analysed: model batch size, the box confidence that counts as a face,
    the published temporal smoothing, which frames of a video (None: all of them), the
    crop (None: the model family's; the DISCOVER trainers give their modules' arithmetic),
    and the limits of pose, size and sharpness within which a frame is `usable`."""

    batch_size: int = 8
    min_face_conf: float = DEFAULT_MIN_FACE_CONF
    smooth: bool = False
    selection: FrameSelection | None = None
    crop: ModelInput | None = None
    usable: UsableLimits = UsableLimits()


@dataclass
class ResultGroup:
    """The results of consecutive frames for every person known so far: one ResultBatch per
    person, a person who first appears here preceded by no-face batches for the frames
    before (so that each person's batches cover every frame, in order)."""

    frames: int
    frames_with_face: int  # frames with at least one analysed face
    batches: list[ResultBatch]


class Analysis:
    """Streams one video or image through the model. Iterating yields ResultBatch objects in
    frame order (several people: each person's batch of a stretch of frames in turn);
    `groups()` yields them grouped by stretch of frames."""

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
        # The predictor's model family says how its input is cut from a frame, and what else
        # than expressions, valence and arousal it gives.
        self.family = family(getattr(predictor, "family", DEFAULT_FAMILY))
        self.crop = (self.settings.crop or self.family.crop).for_boxes(box_source.kind)
        self.n_categories = len(self.family.categories)
        self.dominance = self.family.gives("dominance")
        # Head pose from the model's 68 landmarks where the family gives them, else from the
        # keypoints of the faces that have them (faces.pose).
        self.landmark_pose = self.family.gives("landmarks")
        # FFmpeg's threads: more when the model is not on the CPU.
        threads = decoder_threads_beside(getattr(predictor, "device", "cpu"))
        self.reader = MediaReader(path, self.settings.selection, threads)
        self.info = self.reader.info
        try:
            self.people = open_people(box_source, self.info)
        except BaseException:
            self.reader.close()
            raise
        # Several people: outputs carry person labels, and a late person's earlier frames
        # are filled in from the frame history.
        self.several = self.people.several
        self._history: list[tuple[np.ndarray, np.ndarray]] = []
        self._known: set[str | None] = set()
        self._smoothers: dict[str | None, TemporalSmoother] = {}

    def warnings(self) -> list[str]:
        return list(self.people.warnings)

    def __iter__(self) -> Iterator[ResultBatch]:
        for group in self.groups():
            yield from group.batches

    def groups(self) -> Iterator[ResultGroup]:
        batches = feed(
            self.reader,
            self.people,
            self.settings.min_face_conf,
            self.settings.batch_size,
            self.crop,
        )
        for pending in pending_in_background(batches):
            batches = self._run(pending)
            grouped: list[ResultBatch] = []
            for batch in batches:
                if batch.person not in self._known:
                    self._known.add(batch.person)
                    grouped.extend(self.catch_up(batch.person))
                grouped.append(batch)
            if self.several:
                self._history.append(
                    (batches[0].frame, batches[0].time)
                    if batches
                    else (
                        np.asarray(pending.frame, dtype=np.int64),
                        np.asarray(pending.time, dtype=np.float64),
                    )
                )
            with_face = np.zeros(len(pending), dtype=bool)
            for batch in batches:
                with_face |= batch.face
            yield ResultGroup(len(pending), int(with_face.sum()), grouped)

    def catch_up(self, person: str | None) -> Iterator[ResultBatch]:
        """No-face batches for the frames so far (of several people: a person's frames before
        their first appearance)."""
        if not self._history:
            return
        frames = np.concatenate([frame for frame, _ in self._history])
        times = np.concatenate([time for _, time in self._history])
        detection = self.people.absent(person).detection
        for start in range(0, len(frames), MAX_PENDING_FRAMES):
            chunk = slice(start, start + MAX_PENDING_FRAMES)
            yield ResultBatch.empty(
                frames[chunk],
                times[chunk],
                self.predictor.nclass,
                person,
                detection,
                self.n_categories,
                self.dominance,
            )

    def _run(self, pending: PendingBatch) -> list[ResultBatch]:
        """One ResultBatch per person in `pending`, all its faces through the model at once."""
        n, nclass = len(pending), self.predictor.nclass
        people = list(dict.fromkeys(person for faces in pending.faces for person in faces))
        slot = {person: k for k, person in enumerate(people)}
        # Every score per row, in Predictions.heads() order: what smoothing averages.
        width = nclass + 2 + self.dominance + self.n_categories
        raw = np.full((len(people), n, width), np.nan)
        landmarks = np.full((len(people), n, N_LANDMARKS, 2), np.nan, dtype=np.float32)
        embedding = np.full((len(people), n, EMBEDDING_SIZE), np.nan, dtype=np.float32)
        face = np.zeros((len(people), n), dtype=bool)
        face_conf = np.zeros((len(people), n))
        box = np.full((len(people), n, 4), np.nan)
        distance = np.full((len(people), n), np.nan, dtype=np.float32)
        pose = np.full((len(people), n, 3), np.nan)
        size = np.full((len(people), n), np.nan)
        sharpness = np.full((len(people), n), np.nan)
        if pending.crops:
            rows = np.array([row for row, _ in pending.owners])
            owner = np.array([slot[person] for _, person in pending.owners])
            predictions = self.predictor(self.crop.stack(pending.crops))
            heads = predictions.heads()
            self._check_finite(heads, np.asarray(pending.frame)[rows])
            face[owner, rows] = True
            face_conf[owner, rows] = pending.face_conf
            raw[owner, rows] = heads
            embedding[owner, rows] = predictions.embedding
            size[owner, rows] = pending.face_size
            sharpness[owner, rows] = pending.sharpness
            for k, (row, person) in enumerate(pending.owners):
                matrix = pending.matrices[k]
                if matrix is not None:
                    landmarks[slot[person], row] = apply_affine(
                        invert_affine(matrix), predictions.landmarks[k]
                    )
                box[slot[person], row] = pending.faces[row][person].box
                if pending.faces[row][person].distance is not None:
                    distance[slot[person], row] = pending.faces[row][person].distance
                pose[slot[person], row] = self._pose(landmarks[slot[person], row], pending, k)
        quality = [(pose[k], size[k], sharpness[k]) for k in range(len(people))]
        identified = self.people.identity is not None
        return [
            self._person_batch(
                pending, person, raw[k], face[k], face_conf[k], landmarks[k], embedding[k], box[k],
                quality[k], distance[k] if identified else None,
            )
            for k, person in enumerate(people)
        ]  # fmt: skip

    def _pose(self, landmarks: np.ndarray, pending: PendingBatch, k: int) -> tuple:
        """The head pose of crop `k`: from its landmarks (frame pixels) or its keypoints."""
        frame_size = (self.info.width, self.info.height)
        if self.landmark_pose:
            return pose_from_landmarks(landmarks, frame_size)
        if pending.keypoints[k] is not None:
            return pose_from_keypoints(pending.keypoints[k], frame_size)
        return NO_POSE

    def _person_batch(
        self,
        pending,
        person,
        raw,
        face,
        face_conf,
        landmarks,
        embedding,
        box,
        quality,
        distance=None,
    ):
        pose, size, sharpness = quality
        nclass = self.predictor.nclass
        if self.settings.smooth:
            raw = self._smoothers.setdefault(person, TemporalSmoother())(raw, face)
        probabilities = np.full((len(pending), nclass), np.nan, dtype=np.float32)
        expression = np.full(len(pending), -1, dtype=np.int64)
        if face.any() and nclass:
            probabilities[face] = softmax(raw[face, :nclass])
            expression[face] = probabilities[face].argmax(axis=1)
        absent = self.people.absent(person)
        detections = [faces.get(person, absent).detection for faces in pending.faces]
        dominance = categories = category_set = None
        if self.dominance:
            dominance = raw[:, nclass + 2].astype(np.float32)
        if self.n_categories:
            categories = raw[:, -self.n_categories :].astype(np.float32)
            with np.errstate(invalid="ignore"):  # NaN rows (no face) report nothing
                category_set = categories > self.predictor.thresholds
        return ResultBatch(
            frame=np.asarray(pending.frame, dtype=np.int64),
            time=np.asarray(pending.time, dtype=np.float64),
            face=face,
            face_conf=np.where(face, face_conf, 0.0).astype(np.float32),
            expression=expression,
            probabilities=probabilities,
            valence=raw[:, nclass].astype(np.float32),
            arousal=raw[:, nclass + 1].astype(np.float32),
            landmarks=landmarks,
            embedding=embedding,
            detection=_stacked_detections(detections),
            box=box,
            person=person,
            dominance=dominance,
            categories=categories,
            category_set=category_set,
            identity_distance=distance,
            pose=pose.astype(np.float32),
            face_size=size.astype(np.float32),
            sharpness=sharpness.astype(np.float32),
            usable=self.settings.usable.judge(face, pose, size, sharpness),
        )

    def _check_finite(self, outputs: np.ndarray, frames: np.ndarray) -> None:
        """Fail this input on NaN or infinite outputs (broken weights, fp16 overflow), which
        would otherwise be written as results or trip up the writers."""
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
