"""Face alignment: the affine crop of the published EmoNet data pipeline, and `FaceCrop`, the
form in which a face model family states its own crop (`ModelInput`: what any family's
input cut from a frame answers to).

A pixel box (x1, y1, x2, y2) becomes a square of side 200 * scale around the box centre, with
scale = (width + height) / 220; the square is mapped onto the 256x256 network input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from emonet_cli.constants import INPUT_SIZE
from emonet_cli.errors import InputError
from emonet_cli.media.frames import Frame

if TYPE_CHECKING:
    from emonet_cli.faces.face import FrameFace

# What the boxes of a source frame: faces (a detector's, DISCOVER's BlazeFace streams) or
# whole people (EMOTIC's image lists). A family that reads faces takes only face boxes.
BOX_KINDS = ("face", "person")

REFERENCE_SIDE = 200.0
SCALE_DIVISOR = 220.0


def affine_from_box(box_xyxy, size: int = INPUT_SIZE) -> np.ndarray:
    """The 2x3 matrix mapping frame pixels to crop pixels for a box in frame pixels."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    scale = ((x2 - x1) + (y2 - y1)) / SCALE_DIVISOR
    zoom = size / (REFERENCE_SIDE * scale)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return np.array(
        [
            [zoom, 0.0, size * (0.5 - cx / (REFERENCE_SIDE * scale))],
            [0.0, zoom, size * (0.5 - cy / (REFERENCE_SIDE * scale))],
        ],
        dtype=np.float64,
    )


def module_affine_from_box(box_xyxy, size: int = INPUT_SIZE) -> np.ndarray:
    """The same crop rule computed as DISCOVER's modules (rbdm, emonet) compute it: the box in
    float32, as their SSI box streams hold it, and each step in float32, in their order (centre
    x2 - w / 2, scale ((w + y2) - y1) / 220). The float64 result holds those float32 values, so
    the warp cuts the modules' pixels; the float64 rule can move a pixel by a grey level."""
    x1, y1, x2, y2 = (np.float32(v) for v in box_xyxy)
    half, two = np.float32(0.5), np.float32(2)
    cx, cy = x2 - (x2 - x1) / two, y2 - (y2 - y1) / two
    side = np.float32(REFERENCE_SIDE) * ((x2 - x1 + y2 - y1) / np.float32(SCALE_DIVISOR))
    zoom = np.float32(size) / side
    return np.array(
        [
            [zoom, 0.0, np.float32(size) * (-cx / side + half)],
            [0.0, zoom, np.float32(size) * (-cy / side + half)],
        ],
        dtype=np.float64,
    )


def affine_full_frame(width: int, height: int, size: int = INPUT_SIZE) -> np.ndarray:
    """The matrix that resizes a whole (already cropped) face image to the network input."""
    return np.array([[size / width, 0.0, 0.0], [0.0, size / height, 0.0]], dtype=np.float64)


def crop_face(image: np.ndarray, matrix: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Warp an HxWx3 uint8 image with `matrix` to a size x size crop (bilinear, black outside)."""
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def crop_frame(frame: Frame, matrix: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The RGB crop of a decoded frame: warped from the decoder's BGR, then only the crop
    converted (the warp treats the channels alike, so the pixels are those of warping the
    RGB frame, bit for bit; converting a 256x256 crop instead of a 1280x720 frame saves
    a copy of the frame)."""
    if frame.bgr is None:
        return crop_face(frame.image, matrix, size)
    return cv2.cvtColor(crop_face(frame.bgr, matrix, size), cv2.COLOR_BGR2RGB)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 matrix mapping crop pixels back to frame pixels."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def apply_affine(matrix: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to an (..., 2) array of points."""
    points_xy = np.asarray(points_xy, dtype=np.float64)
    return points_xy @ matrix[:, :2].T + matrix[:, 2]


class ModelInput(Protocol):
    """How a model family's input is cut from a frame, for one of its faces or people."""

    description: str

    def for_boxes(self, kind: str) -> ModelInput:
        """This input for boxes of `kind` (one of BOX_KINDS); InputError if it cannot use them."""
        ...

    def cut(self, frame: Frame, face: FrameFace) -> tuple[Any, np.ndarray | None] | None:
        """The network input for a usable face of `frame` and the affine from frame pixels
        onto it (None when the input is no affine crop); None when the box yields no input."""
        ...

    def stack(self, items: Sequence[Any]) -> Any:
        """Inputs of `cut` as the batch the family's predictor takes."""
        ...


@dataclass(frozen=True)
class FaceCrop:
    """How a model family's input is cut from a frame: an affine map from frame pixels onto a
    `size` x `size` crop, for a face box (`from_box`) or for an image that is already the face
    (`from_whole_frame`, given its width and height)."""

    description: str
    size: int
    from_box: Callable[[np.ndarray], np.ndarray]
    from_whole_frame: Callable[[int, int], np.ndarray]

    def matrix(self, box_xyxy) -> np.ndarray:
        return self.from_box(box_xyxy)

    def whole_frame(self, width: int, height: int) -> np.ndarray:
        return self.from_whole_frame(width, height)

    def for_boxes(self, kind: str) -> FaceCrop:
        if kind != "face":
            raise InputError(f"this model reads faces: it takes face boxes, not {kind} boxes")
        return self

    def face_matrix(self, face: FrameFace) -> np.ndarray:
        """The affine for a face: of its box, or of the whole frame that is the face."""
        if face.whole_frame:
            return self.whole_frame(int(face.box[2]), int(face.box[3]))
        return self.matrix(face.box)

    def cut(self, frame: Frame, face: FrameFace) -> tuple[np.ndarray, np.ndarray]:
        matrix = self.face_matrix(face)
        return crop_frame(frame, matrix, self.size), matrix

    def stack(self, items: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack(items)


PUBLISHED_CROP = FaceCrop(
    "the published EmoNet crop: a square of side 200 * (w + h) / 220 about the box centre, "
    f"warped bilinearly onto {INPUT_SIZE}x{INPUT_SIZE}",
    INPUT_SIZE,
    affine_from_box,
    affine_full_frame,
)
# What DISCOVER's emonet module cuts: the published rule in its modules' float32 arithmetic.
DISCOVER_EMONET_CROP = FaceCrop(
    "DISCOVER's emonet module crop: the published square in the module's float32 arithmetic",
    INPUT_SIZE,
    module_affine_from_box,
    affine_full_frame,
)
