"""One input's side of the analysis chain: decode -> faces -> crops, in batches for the model.

`feed` cuts each analysed face with the family's crop and measures its size and sharpness
beside it (faces.quality); `pending_in_background` runs it in a thread that fills a small queue
of batches while the model works on the previous one, so memory stays bounded by that queue,
whatever the length of the video.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from emonet_cli.constants import INPUT_SIZE
from emonet_cli.faces import FrameFace
from emonet_cli.faces.align import PUBLISHED_CROP, FaceCrop, ModelInput
from emonet_cli.faces.people import People, faces_of
from emonet_cli.faces.quality import crop_sharpness, face_size, frame_sharpness
from emonet_cli.media.frames import Frame
from emonet_cli.media.tuning import background_thread

QUEUE_BATCHES = 2
MAX_PENDING_FRAMES = 256


@dataclass
class PendingBatch:
    """Frames decoded and their faces aligned, waiting for the model. One crop per analysed
    face: with several people, a frame has several."""

    frame: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    faces: list[dict[str | None, FrameFace]] = field(default_factory=list)  # per frame
    owners: list[tuple[int, str | None]] = field(default_factory=list)  # per crop: row, person
    crops: list = field(default_factory=list)  # what the family's crop cut
    matrices: list[np.ndarray | None] = field(default_factory=list)
    face_conf: list[float] = field(default_factory=list)  # per crop
    face_size: list[float] = field(default_factory=list)  # per crop (faces.quality)
    sharpness: list[float] = field(default_factory=list)  # per crop
    keypoints: list[np.ndarray | None] = field(default_factory=list)  # per crop: BlazeFace's

    def __len__(self) -> int:
        return len(self.frame)


def face_matrix(
    face: FrameFace, min_conf: float, crop: FaceCrop = PUBLISHED_CROP
) -> tuple[np.ndarray | None, float]:
    """The affine that `crop` warps a frame's face with, and its confidence; None and 0 when
    the face is not analysed."""
    if not analysed(face, min_conf):
        return None, 0.0
    return crop.face_matrix(face), face.conf


def analysed(face: FrameFace, min_conf: float) -> bool:
    """Whether the model sees this face: a frame that is its own crop, or a usable box."""
    return face.whole_frame or face.usable(min_conf)


def feed(
    frames: Iterable[Frame],
    people: People,
    min_face_conf: float,
    batch_size: int,
    crop: ModelInput,
) -> Iterator[PendingBatch]:
    """One input's frames, with every person's face and its crop, in batches of about
    `batch_size` crops for the model; each face's size and sharpness measured beside it."""
    # The sharpness is that of the published 256 crop: read from a crop of that geometry,
    # else warped from the frame (the same pixels; see faces.quality).
    published = isinstance(crop, FaceCrop) and crop.size == INPUT_SIZE
    pending = PendingBatch()
    for frame, faces in faces_of(frames, people):
        pending.frame.append(frame.index)
        pending.time.append(frame.time)
        pending.faces.append(faces)
        for person, face in faces.items():
            cut = crop.cut(frame, face) if analysed(face, min_face_conf) else None
            if cut is not None:
                pending.owners.append((len(pending) - 1, person))
                pending.crops.append(cut[0])
                pending.matrices.append(cut[1])
                pending.face_conf.append(face.conf)
                pending.face_size.append(face_size(face.box))
                if published:
                    sharp = crop_sharpness(cut[0], cut[1], _frame_size(frame))
                else:
                    sharp = frame_sharpness(frame, face)
                pending.sharpness.append(sharp)
                pending.keypoints.append(face.keypoints)
        # Frames without a face still flush: memory stays bounded in a faceless stretch.
        if len(pending.crops) >= batch_size or len(pending) >= MAX_PENDING_FRAMES:
            yield pending
            pending = PendingBatch()
    if len(pending):
        yield pending


def _decode_and_align(batches: Iterator[PendingBatch], out: queue.Queue, stop: threading.Event):
    """Producer thread: fills `out` with the batches of `feed`, then None; an exception is
    passed on to the consumer instead."""
    try:
        background_thread()  # behind the model's threads (see tuning)
        for pending in batches:
            out.put(pending)
            if stop.is_set():
                return
        out.put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def pending_in_background(batches: Iterator[PendingBatch]) -> Iterator[PendingBatch]:
    """The batches of `feed`, made in a background thread."""
    queued: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()
    worker = threading.Thread(
        target=_decode_and_align,
        args=(batches, queued, stop),
        name="emonet-decode",
        daemon=True,
    )
    worker.start()
    try:
        while True:
            item = queued.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                queued.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def _frame_size(frame: Frame) -> tuple[int, int]:
    image = frame.bgr if frame.bgr is not None else frame.image
    return image.shape[1], image.shape[0]
