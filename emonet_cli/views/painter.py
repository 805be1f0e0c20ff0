"""One output frame of `emonet render`, drawn from the input frame and its results.

The input frame gets the face box, the expression and the 68 landmarks drawn on the face; beside
it, a panel shows the expression's probability bars and the valence/arousal circumplex (current
point and a fading trail of the last second). Only OpenCV and numpy: no model, no files.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from emonet_cli.constants import CLASS_COLORS, default_class_colors

TRAIL_SECONDS = 1.0
# The panel is laid out for a 480 px high frame and scaled to the frame's height; smaller frames
# are padded up to MIN_HEIGHT so that the panel's text stays legible.
DESIGN_HEIGHT = 480
DESIGN_PANEL_WIDTH = 360
MIN_HEIGHT = 400

Color = tuple[int, int, int]  # RGB
BACKGROUND: Color = (24, 27, 33)
PANEL: Color = (32, 36, 44)
GRID: Color = (78, 84, 96)
TEXT: Color = (236, 239, 241)
MUTED: Color = (144, 150, 162)
BAR_TRACK: Color = (52, 57, 68)
TRAIL: Color = (236, 239, 241)
LANDMARK: Color = (120, 255, 200)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_CAP_HEIGHT = 22  # cap height in pixels of FONT at scale 1


@dataclass
class FrameResult:
    """What the analysis says about one frame."""

    face: bool
    expression: int  # -1 without a face
    probabilities: np.ndarray  # (nclass,)
    valence: float
    arousal: float
    landmarks: np.ndarray | None  # (68, 2) x, y in frame pixels; None when not known
    usable: bool | None = None  # the face is usable (faces.quality); None when not known


def class_rgb(name: str) -> Color:
    """The NOVA colour of a published expression class as RGB."""
    return argb_to_rgb(CLASS_COLORS[name])


def argb_to_rgb(argb: str) -> Color:
    """A NOVA colour (written #AARRGGBB) as RGB."""
    return int(argb[3:5], 16), int(argb[5:7], 16), int(argb[7:9], 16)


def round_up_to_even(n: int) -> int:
    """`n` rounded up to even: MPEG-4 encoders and most players want even frame sizes."""
    return n + n % 2


def output_size(size: tuple[int, int], max_width: int | None) -> tuple[int, int]:
    """The composed frame's size, scaled down (keeping its shape) to at most `max_width`."""
    width, height = size
    if max_width is None or width <= max_width:
        return size
    scaled_height = round(height * max_width / width)
    return max(2, max_width - max_width % 2), max(2, scaled_height - scaled_height % 2)


class Trail:
    """Valence/arousal of the frames of the last TRAIL_SECONDS, oldest first."""

    def __init__(self, seconds: float = TRAIL_SECONDS):
        self.seconds = seconds
        self.points: deque[tuple[float, float, float, bool]] = deque()

    def add(self, time_s: float, result: FrameResult) -> None:
        self.points.append((time_s, result.valence, result.arousal, result.face))
        while self.points and self.points[0][0] < time_s - self.seconds:
            self.points.popleft()


def _text_scale(cap_height: float) -> float:
    return cap_height / FONT_CAP_HEIGHT


class FramePainter:
    """Composes output frames: the annotated frame on the left, the panel on the right.

    Everything that does not change from frame to frame is drawn once into a template."""

    def __init__(
        self,
        width: int,
        height: int,
        class_names: tuple[str, ...],
        class_colors: tuple[str, ...] | None = None,
    ):
        self.width, self.height = width, height
        self.class_names = class_names
        argb = class_colors or default_class_colors(class_names)
        self.colors = [argb_to_rgb(color) for color in argb]
        canvas_height = max(height, MIN_HEIGHT)
        self.u = canvas_height / DESIGN_HEIGHT  # panel pixels per design unit
        self.panel_width = round(DESIGN_PANEL_WIDTH * self.u)
        self.size = (round_up_to_even(width + self.panel_width), round_up_to_even(canvas_height))
        self.frame_top = (self.size[1] - height) // 2
        self._layout()
        self.template = self._draw_template()

    # --- geometry, in panel pixels ---
    def _layout(self) -> None:
        u = self.u
        self.pad = round(16 * u)
        self.name_baseline = round(42 * u)
        self.time_baseline = round(64 * u)
        self.bars_top = round(80 * u)
        self.bar_pitch = 18 * u
        self.bar_left = round(112 * u)
        self.bar_right = self.panel_width - round(64 * u)
        bars_bottom = self.bars_top + self.bar_pitch * len(self.class_names)
        readout_height = 26 * u
        area_top = bars_bottom + 10 * u
        area_bottom = self.size[1] - self.pad - readout_height
        label_room = 14 * u
        self.radius = max(
            10, round(min(area_bottom - area_top, self.panel_width - 2 * self.pad) / 2 - label_room)
        )
        self.centre = (self.panel_width // 2, round((area_top + area_bottom) / 2))
        self.readout_baseline = round(self.size[1] - self.pad)

    def _put(self, image, text, origin, cap, color, thickness=1, align="left") -> None:
        scale = _text_scale(cap)
        thick = max(1, round(thickness * self.u))
        x, y = origin
        if align != "left":
            (text_width, _), _ = cv2.getTextSize(text, FONT, scale, thick)
            x -= text_width if align == "right" else text_width // 2
        cv2.putText(image, text, (round(x), round(y)), FONT, scale, color, thick, cv2.LINE_AA)

    def _draw_template(self) -> np.ndarray:
        u = self.u
        panel = np.empty((self.size[1], self.panel_width, 3), dtype=np.uint8)
        panel[:] = PANEL
        line = max(1, round(u))
        sep_y = round(self.bars_top - 8 * u)
        cv2.line(panel, (self.pad, sep_y), (self.panel_width - self.pad, sep_y), GRID, line)
        for k, name in enumerate(self.class_names):
            top = round(self.bars_top + k * self.bar_pitch)
            bottom = round(top + 11 * u)
            self._put(panel, name, (self.pad, bottom), 11 * u, MUTED)
            cv2.rectangle(panel, (self.bar_left, top), (self.bar_right, bottom), BAR_TRACK, -1)
        cx, cy, r = *self.centre, self.radius
        cv2.circle(panel, (cx, cy), r, GRID, line, cv2.LINE_AA)
        cv2.line(panel, (cx - r, cy), (cx + r, cy), GRID, line, cv2.LINE_AA)
        cv2.line(panel, (cx, cy - r), (cx, cy + r), GRID, line, cv2.LINE_AA)
        for fraction in (-0.5, 0.5):
            tick = round(3 * u)
            x, y = cx + round(fraction * r), cy - round(fraction * r)
            cv2.line(panel, (x, cy - tick), (x, cy + tick), GRID, line)
            cv2.line(panel, (cx - tick, y), (cx + tick, y), GRID, line)
        cap = 10 * u
        self._put(panel, "valence", (cx + r, cy + cap + 6 * u), cap, MUTED, align="right")
        self._put(panel, "arousal", (cx + 6 * u, cy - r + cap), cap, MUTED)
        self._put(panel, "-", (cx - r - 10 * u, cy + cap / 2), cap, MUTED)
        self._put(panel, "+", (cx + r + 3 * u, cy + cap / 2), cap, MUTED)
        return panel

    # --- per frame ---
    def paint(
        self,
        image: np.ndarray,
        result: FrameResult,
        box: np.ndarray | None,
        trail: Trail,
        time_s: float,
        index: int,
    ) -> np.ndarray:
        """The composed RGB output frame; `image` (the decoded RGB frame) is drawn on."""
        canvas = np.empty((self.size[1], self.size[0], 3), dtype=np.uint8)
        canvas[:] = BACKGROUND
        self._annotate_frame(image, result, box)
        canvas[self.frame_top : self.frame_top + self.height, : self.width] = image
        panel = self.template.copy()
        self._draw_header(panel, result, time_s, index)
        self._draw_bars(panel, result)
        self._draw_circumplex(panel, result, trail)
        canvas[:, self.width : self.width + self.panel_width] = panel
        return canvas

    def _annotate_frame(
        self, image: np.ndarray, result: FrameResult, box: np.ndarray | None
    ) -> None:
        f = self.u  # sized as the panel, so that small frames get legible overlays
        if not result.face:
            self._no_face_banner(image)
            return
        color = self.colors[result.expression]
        if result.landmarks is not None:
            radius = max(1, round(2 * f))
            for x, y in result.landmarks:
                if math.isfinite(x) and math.isfinite(y):
                    centre = (round(x), round(y))
                    cv2.circle(image, centre, radius + 1, BACKGROUND, -1, cv2.LINE_AA)
                    cv2.circle(image, centre, radius, LANDMARK, -1, cv2.LINE_AA)
        if box is None:
            return
        x1, y1, x2, y2 = (round(v) for v in box)
        unusable = result.usable is False
        if unusable:  # a grey box, its label saying so: the values are shown, not trusted
            color = MUTED
        cv2.rectangle(image, (x1, y1), (x2, y2), color, max(2, round(3 * f)), cv2.LINE_AA)
        name = self.class_names[result.expression]
        label = f"{name} {result.probabilities[result.expression]:.0%}"
        if unusable:
            label += " (not usable)"
        self.chip(image, label, (x1, y1), color, 14 * f, round(5 * f))

    def chip(self, image, label: str, corner: tuple[int, int], color, cap, margin: int) -> None:
        """`label` on a chip of `color` above the box corner `corner` (inside when no room)."""
        x1, y1 = corner
        scale, thick = _text_scale(cap), max(1, round(1.5 * self.u))
        (text_width, _), _ = cv2.getTextSize(label, FONT, scale, thick)
        chip_height = round(cap + 2 * margin)
        top = y1 - chip_height if y1 >= chip_height else max(y1, 0)  # above, else inside
        left = min(max(x1, 0), max(0, self.width - text_width - 2 * margin))
        right = left + text_width + 2 * margin
        cv2.rectangle(image, (left, top), (right, top + chip_height), color, -1)
        ink = (0, 0, 0) if sum(color) > 382 else TEXT
        origin = (left + margin, top + chip_height - margin)
        cv2.putText(image, label, origin, FONT, scale, ink, thick, cv2.LINE_AA)

    def _no_face_banner(self, image: np.ndarray) -> None:
        f = self.u
        cap = 16 * f
        margin = round(8 * f)
        scale, thick = _text_scale(cap), max(1, round(2 * f))
        (text_width, _), _ = cv2.getTextSize("no face", FONT, scale, thick)
        x2, y2 = margin + text_width + 2 * margin, margin + round(cap) + 2 * margin
        region = image[margin:y2, margin:x2]
        region[:] = (0.35 * region + 0.65 * np.array(BACKGROUND)).astype(np.uint8)
        cv2.putText(
            image, "no face", (2 * margin, y2 - margin), FONT, scale, TEXT, thick, cv2.LINE_AA
        )

    def _draw_header(self, panel: np.ndarray, result: FrameResult, time_s: float, index: int):
        u, right = self.u, self.panel_width - self.pad
        if result.face:
            name = self.class_names[result.expression]
            color = self.colors[result.expression]
            self._put(panel, name, (self.pad, self.name_baseline), 24 * u, color, 2)
            probability = f"{result.probabilities[result.expression]:.0%}"
            self._put(panel, probability, (right, self.name_baseline), 20 * u, TEXT, 2, "right")
        else:
            self._put(panel, "no face", (self.pad, self.name_baseline), 24 * u, MUTED, 2)
        self._put(panel, f"{time_s:.2f} s", (self.pad, self.time_baseline), 10 * u, MUTED)
        self._put(panel, f"frame {index}", (right, self.time_baseline), 10 * u, MUTED, 1, "right")

    def _draw_bars(self, panel: np.ndarray, result: FrameResult) -> None:
        u, right = self.u, self.panel_width - self.pad
        for k, name in enumerate(self.class_names):
            top = round(self.bars_top + k * self.bar_pitch)
            bottom = round(top + 11 * u)
            if not result.face:
                self._put(panel, "-", (right, bottom), 11 * u, MUTED, 1, "right")
                continue
            p = float(result.probabilities[k])
            end = self.bar_left + round(p * (self.bar_right - self.bar_left))
            cv2.rectangle(panel, (self.bar_left, top), (end, bottom), self.colors[k], -1)
            chosen = k == result.expression
            if chosen:
                self._put(panel, name, (self.pad, bottom), 11 * u, TEXT)
            self._put(
                panel, f"{p:.0%}", (right, bottom), 11 * u, TEXT if chosen else MUTED, 1, "right"
            )

    def _point(self, valence: float, arousal: float) -> tuple[int, int]:
        # Values beyond the circle (rare) are pinned to its square, not drawn off the panel.
        v, a = np.clip([valence, arousal], -1.05, 1.05)
        cx, cy = self.centre
        return round(cx + v * self.radius), round(cy - a * self.radius)

    def _draw_circumplex(self, panel: np.ndarray, result: FrameResult, trail: Trail) -> None:
        u = self.u
        points = list(trail.points)
        now = points[-1][0] if points else 0.0
        thickness = max(1, round(2 * u))
        for (_, v0, a0, face0), (t1, v1, a1, face1) in zip(points, points[1:]):
            if not (face0 and face1):
                continue
            fade = max(0.0, 1.0 - (now - t1) / trail.seconds)
            color = tuple(round(p + (t - p) * fade) for p, t in zip(PANEL, TRAIL))
            cv2.line(panel, self._point(v0, a0), self._point(v1, a1), color, thickness, cv2.LINE_AA)
        cap = 11 * u
        if result.face:
            centre = self._point(result.valence, result.arousal)
            cv2.circle(panel, centre, round(7 * u), TEXT, -1, cv2.LINE_AA)
            cv2.circle(panel, centre, round(5 * u), self.colors[result.expression], -1, cv2.LINE_AA)
            readout = f"valence {result.valence:+.2f}   arousal {result.arousal:+.2f}"
        else:
            readout = "valence  -     arousal  -"
        self._put(
            panel, readout, (self.panel_width // 2, self.readout_baseline), cap, TEXT, 1, "center"
        )
