"""Several faces per frame, kept apart: each person gets an id that stays with them.

The rule, frame by frame (`Tracker.update`):

1. Of the frame's detections, the `max_faces` with the highest scores are kept.
2. Every person seen before predicts where their box is now: the last box moved by the
   box's velocity (per frame, averaged over the last matches) times the frames since.
3. A detection and a person match by overlap: the larger IoU of the detection with the
   predicted box and with the last box seen. Pairs are taken best first (greedy), each person
   and each detection once, down to `min_iou`.
4. A detection left over may still belong to a person who was not matched: the nearest one
   whose box has a similar size (half to twice the side) and whose predicted or last centre
   lies within one box side of the detection's centre. This keeps a person through a jump
   (a face leaving and coming back near where it left, or crossing another face).
5. Any detection still left starts a new person, numbered in order of first appearance.
   With `confirm` above 1 it starts as a candidate, and becomes a person (and gets their
   number) only once detected in `confirm` frames in a row; a candidate missed once is
   dropped. Fleeting false detections then make no person, at the cost of a person's
   first `confirm - 1` frames.
6. A person unseen for longer than `patience` seconds is forgotten: coming back later makes
   them a new person.

With identity (`identity.tracks`), these ids are tracks: stretches of one face by position,
which identity gives their person's number; it ends every track at a cut (`forget_all`) and
a track whose person turns up elsewhere (`forget`).

Greedy matching, not the Hungarian algorithm: with the few faces of a camera view the two
agree except in contrived ties, and it needs no dependency (scipy stays a test extra).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_PATIENCE_S = 1.0
MIN_IOU = 0.1
VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity against the running one
SIZE_RATIO = 2.0  # a person's box and a detection's may differ at most this much in side
MAX_CENTRE_SHIFT = 1.0  # in box sides: how far a centre may jump and still be the same person


@dataclass
class _Person:
    id: int  # 0 while a candidate
    box: np.ndarray  # x1, y1, x2, y2 of the last match
    last_frame: int
    velocity: np.ndarray  # per frame, of the four corners
    seen: int = 1  # frames matched (what confirms a candidate)

    def predicted(self, frame: int) -> np.ndarray:
        return self.box + self.velocity * (frame - self.last_frame)


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of boxes x1, y1, x2, y2."""
    a, b = boxes_a[:, None, :], boxes_b[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _side(box: np.ndarray) -> float:
    return float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)))


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


class Tracker:
    """Gives the detections of consecutive frames person ids (see the module docstring)."""

    def __init__(
        self,
        fps: float,
        *,
        max_faces: int = 1,
        patience: float = DEFAULT_PATIENCE_S,
        confirm: int = 1,
    ):
        """`max_faces` per frame; a person unseen for `patience` seconds is forgotten; a new
        face must be seen in `confirm` frames in a row to become a person."""
        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        if confirm < 1:
            raise ValueError("a new face must be seen in at least 1 frame to be confirmed")
        if not patience >= 0:
            raise ValueError("the track patience must be 0 seconds or more")
        self.max_faces, self.confirm = max_faces, confirm
        self.patience_frames = max(1, round(patience * fps))
        self.people: list[_Person] = []
        self.next_id = 1

    def update(self, frame: int, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Person ids (1, 2, ...) of a frame's detections `boxes` (n, 4) in pixels with their
        `scores`; 0 for a detection beyond `max_faces` or of a face not yet confirmed. Frames
        come in increasing order."""
        ids = np.zeros(len(boxes), dtype=np.int64)
        self.people = [p for p in self.people if self._remembered(p, frame)]
        kept = np.argsort(-np.asarray(scores), kind="stable")[: self.max_faces]
        matches = self._match(frame, boxes[kept])
        for slot, detection in enumerate(kept):
            person = matches.get(slot)
            if person is None:
                person = _Person(0, boxes[detection].copy(), frame, np.zeros(4))
                self.people.append(person)
            else:
                self._move(person, boxes[detection], frame)
                person.seen += 1
            if not person.id and person.seen >= self.confirm:
                person.id, self.next_id = self.next_id, self.next_id + 1
            ids[detection] = person.id
        return ids

    def forget(self, track: int) -> None:
        """End the track `track`: a face where it was starts a new one."""
        self.people = [p for p in self.people if p.id != track]

    def forget_all(self) -> None:
        """End every track (at a cut, positions say nothing about who is where)."""
        self.people = []

    def _remembered(self, person: _Person, frame: int) -> bool:
        """Whether `person` is still tracked: a candidate only while seen in every frame."""
        unseen = frame - person.last_frame
        return unseen <= (self.patience_frames if person.id else 1)

    def _match(self, frame: int, boxes: np.ndarray) -> dict[int, _Person]:
        """Which person each detection (by its position in `boxes`) belongs to."""
        if not len(boxes) or not self.people:
            return {}
        predicted = np.array([p.predicted(frame) for p in self.people])
        last = np.array([p.box for p in self.people])
        overlap = np.maximum(iou(predicted, boxes), iou(last, boxes))
        matches: dict[int, _Person] = {}
        taken: set[int] = set()
        for flat in np.argsort(-overlap, axis=None, kind="stable"):
            person, slot = np.unravel_index(flat, overlap.shape)
            if overlap[person, slot] < MIN_IOU:
                break
            if person in taken or slot in matches:
                continue
            matches[int(slot)] = self.people[person]
            taken.add(int(person))
        self._match_by_distance(boxes, predicted, last, matches, taken)
        return matches

    def _match_by_distance(self, boxes, predicted, last, matches, taken) -> None:
        pairs = []
        for slot, box in enumerate(boxes):
            if slot in matches:
                continue
            side, centre = _side(box), _centre(box)
            for person in range(len(self.people)):
                if person in taken:
                    continue
                if not 1 / SIZE_RATIO <= _side(last[person]) / side <= SIZE_RATIO:
                    continue
                shift = min(
                    np.linalg.norm(_centre(predicted[person]) - centre),
                    np.linalg.norm(_centre(last[person]) - centre),
                )
                if shift <= MAX_CENTRE_SHIFT * side:
                    pairs.append((shift, slot, person))
        for _, slot, person in sorted(pairs):
            if slot not in matches and person not in taken:
                matches[slot] = self.people[person]
                taken.add(person)

    @staticmethod
    def _move(person: _Person, box: np.ndarray, frame: int) -> None:
        step = (box - person.box) / max(frame - person.last_frame, 1)
        person.velocity = VELOCITY_SMOOTHING * step + (1 - VELOCITY_SMOOTHING) * person.velocity
        person.box = box.copy()
        person.last_frame = frame
