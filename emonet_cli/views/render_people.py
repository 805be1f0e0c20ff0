"""`emonet render` for several people: every tracked face drawn with its number and colour.

On the frame each person's box and chip (`face2 Happy 81%`) are drawn in the person's colour;
in the panel each class row holds one thin bar per person, and the circumplex one point (with
its trail) per person. The results come from an earlier analysis (`S.faceK.csv` of the people
its summary lists, boxes from `S.faces.csv`) when they cover every frame, else from the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.faces.boxfiles import FaceBoxes, read_box_file
from emonet_cli.faces.face import face_id, person_label
from emonet_cli.media.frames import MediaInfo
from emonet_cli.outputs.results import Results, read_results
from emonet_cli.outputs.writers import CSV_OUTPUT, FACES_SUFFIX, output_path, summary_path
from emonet_cli.views.painter import (
    BACKGROUND,
    LANDMARK,
    TEXT,
    FramePainter,
    FrameResult,
    Trail,
)
from emonet_cli.views.rendered_video import write_rendered

Color = tuple[int, int, int]
# Person colours (RGB), apart from the expression colours' reds and greens where possible.
PERSON_COLORS: tuple[Color, ...] = (
    (66, 165, 245),
    (255, 167, 38),
    (171, 71, 188),
    (38, 198, 218),
    (255, 238, 88),
    (236, 64, 122),
    (141, 110, 99),
    (158, 158, 158),
)


def person_color(person: str) -> Color:
    return PERSON_COLORS[(face_id(person) - 1) % len(PERSON_COLORS)]


@dataclass
class PersonResult:
    person: str
    result: FrameResult
    box: np.ndarray | None  # x1, y1, x2, y2 in frame pixels


class PeoplePainter(FramePainter):
    """Composes output frames with every person's face and results."""

    def paint_people(
        self,
        image: np.ndarray,
        people: list[PersonResult],
        trails: dict[str, Trail],
        time_s: float,
        index: int,
    ) -> np.ndarray:
        canvas = np.empty((self.size[1], self.size[0], 3), dtype=np.uint8)
        canvas[:] = BACKGROUND
        seen = [p for p in people if p.result.face]
        for person in seen:
            self._annotate_person(image, person)
        if not seen:
            self._no_face_banner(image)
        canvas[self.frame_top : self.frame_top + self.height, : self.width] = image
        panel = self.template.copy()
        u, right = self.u, self.panel_width - self.pad
        title = f"{len(seen)} of {len(people)} faces" if people else "no face"
        self._put(panel, title, (self.pad, self.name_baseline), 20 * u, TEXT, 2)
        self._put(panel, f"{time_s:.2f} s", (self.pad, self.time_baseline), 10 * u, TEXT)
        self._put(panel, f"frame {index}", (right, self.time_baseline), 10 * u, TEXT, 1, "right")
        self._draw_people_bars(panel, seen)
        for person in people:
            self._draw_person_point(panel, person, trails[person.person])
        canvas[:, self.width : self.width + self.panel_width] = panel
        return canvas

    def _annotate_person(self, image: np.ndarray, person: PersonResult) -> None:
        f, result, color = self.u, person.result, person_color(person.person)
        if result.landmarks is not None:
            radius = max(1, round(2 * f))
            for x, y in result.landmarks:
                if math.isfinite(x) and math.isfinite(y):
                    cv2.circle(image, (round(x), round(y)), radius, LANDMARK, -1, cv2.LINE_AA)
        if person.box is None:
            return
        x1, y1, x2, y2 = (round(v) for v in person.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, max(2, round(3 * f)), cv2.LINE_AA)
        name = self.class_names[result.expression]
        label = f"{person.person} {name} {result.probabilities[result.expression]:.0%}"
        self.chip(image, label, (x1, y1), color, 12 * f, round(4 * f))

    def _draw_people_bars(self, panel: np.ndarray, seen: list[PersonResult]) -> None:
        if not seen:
            return
        u = self.u
        for k in range(len(self.class_names)):
            top = self.bars_top + k * self.bar_pitch
            height = 11 * u / len(seen)
            for n, person in enumerate(seen):
                p = float(person.result.probabilities[k])
                end = self.bar_left + round(p * (self.bar_right - self.bar_left))
                y0, y1 = round(top + n * height), round(top + (n + 1) * height) - 1
                cv2.rectangle(
                    panel, (self.bar_left, y0), (end, max(y0, y1)), person_color(person.person), -1
                )

    def _draw_person_point(self, panel: np.ndarray, person: PersonResult, trail: Trail) -> None:
        color = person_color(person.person)
        points = list(trail.points)
        for (_, v0, a0, face0), (_, v1, a1, face1) in zip(points, points[1:]):
            if face0 and face1:
                start, end = self._point(v0, a0), self._point(v1, a1)
                cv2.line(panel, start, end, color, max(1, round(self.u)), cv2.LINE_AA)
        if person.result.face:
            centre = self._point(person.result.valence, person.result.arousal)
            cv2.circle(panel, centre, round(7 * self.u), TEXT, -1, cv2.LINE_AA)
            cv2.circle(panel, centre, round(5 * self.u), color, -1, cv2.LINE_AA)


def people_from_model(analysis) -> Iterator[list[PersonResult]]:
    """Every person's result, frame by frame, as the analysis (of several people) runs."""
    for group in analysis.groups():
        current = {batch.person: batch for batch in group.batches}  # not the catch-up batches
        ordered = sorted(current.values(), key=lambda batch: face_id(batch.person))
        for row in range(group.frames):
            yield [
                PersonResult(b.person, _row_result(b, row, b.landmarks[row]), _box(b.box[row]))
                for b in ordered
            ]


def _row_result(columns, row: int, landmarks: np.ndarray | None) -> FrameResult:
    return FrameResult(
        face=bool(columns.face[row]),
        expression=int(columns.expression[row]),
        probabilities=columns.probabilities[row],
        valence=float(columns.valence[row]),
        arousal=float(columns.arousal[row]),
        landmarks=landmarks,
        usable=None if getattr(columns, "usable", None) is None else bool(columns.usable[row]),
    )


def _box(box: np.ndarray | None) -> np.ndarray | None:
    return box if box is not None and np.isfinite(box).all() else None


def stored_people(video: Path, info: MediaInfo, results_dir: Path | None) -> list | None:
    """The per-frame results of an earlier analysis of several people in `video`, when its
    summary lists them and every person's CSV covers every frame; else None."""
    try:
        summary = json.loads(summary_path(video, results_dir).read_text(encoding="utf-8"))
        # A named person (a gallery's) carries their number; earlier summaries have faceK.
        people = [
            person_label(person.get("number") or face_id(person["person"]), person["person"])
            for person in summary["people"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    tables: dict[str, Results] = {}
    for person in people:
        csv_path = output_path(video, results_dir, CSV_OUTPUT.suffix, person)
        if not csv_path.is_file():
            return None
        tables[person] = read_results(csv_path)
        if len(tables[person]) != info.frame_count:
            return None
    faces_path = output_path(video, results_dir, FACES_SUFFIX)
    boxes = read_box_file(faces_path) if faces_path.is_file() else {}
    return [_stored_frame(tables, boxes, row) for row in range(info.frame_count)]


def _stored_frame(tables: dict[str, Results], boxes: dict, row: int) -> list[PersonResult]:
    found = []
    for person, table in tables.items():
        person_boxes: FaceBoxes | None = boxes.get(face_id(person))
        box_row = person_boxes.row(row) if person_boxes is not None else None
        box = person_boxes.boxes[box_row] if box_row is not None else None
        found.append(PersonResult(person, _row_result(table, row, None), box))
    return found


def render_people_frames(
    video: Path,
    output: Path,
    results,
    class_names: tuple[str, ...],
    every: int = 1,
    max_width: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> tuple[int, float, tuple[int, int]]:
    """As render.render_frames, for several people: `results` gives each decoded frame its
    list of PersonResult."""
    trails: dict[str, Trail] = {}

    def paint(painter: PeoplePainter, frame, people: list[PersonResult], shown: bool):
        for person in people:
            trails.setdefault(person.person, Trail()).add(frame.time, person.result)
        if shown:
            return painter.paint_people(frame.image, people, trails, frame.time, frame.index)
        return None

    return write_rendered(
        video, output, results, lambda w, h: PeoplePainter(w, h, class_names), paint, every,
        max_width, on_frame,
    )  # fmt: skip
