"""The EMOTIC network's inputs, prepared as the reference does (numpy and OpenCV, no torch).

Tandon's re-implementation (inference.py, mat2py.py) takes an RGB image and a person box
(x1, y1, x2, y2) in pixels:
  body    = image[y1:y2, x1:x2], resized to 128x128;
  context = the whole image, resized to 224x224;
both with cv2.resize's default bilinear interpolation, scaled to [0, 1] (ToTensor) and
normalised per channel with the EMOTIC training set's means and standard deviations, which
differ between body and context. The body is cut from the full-resolution image.

Without a person box (a face detector gives only faces), `face_to_body_box` grows the face
box into an upper-body box: our rule, not the reference's, which always has person boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from emonet_cli.errors import InputError
from emonet_cli.faces.align import BOX_KINDS
from emonet_cli.media.frames import Frame

if TYPE_CHECKING:
    from emonet_cli.faces.face import FrameFace

CONTEXT_SIZE = 224
BODY_SIZE = 128
# RGB channel statistics of the EMOTIC training images (the reference's main.py).
CONTEXT_MEAN = np.array([0.4690646, 0.4407227, 0.40508908], dtype=np.float32)
CONTEXT_STD = np.array([0.2514227, 0.24312855, 0.24266963], dtype=np.float32)
BODY_MEAN = np.array([0.43832874, 0.3964344, 0.3706214], dtype=np.float32)
BODY_STD = np.array([0.24784276, 0.23621225, 0.2323653], dtype=np.float32)

# The upper-body box grown from a face box (x1, y1, x2, y2) of width w and height h: 3w wide,
# centred on the face, from h/2 above the face's top to 4h below it (3h below the chin,
# about the waist), then clipped to the frame.
UPPER_BODY_WIDTH = 3.0  # in face widths
UPPER_BODY_ABOVE = 0.5  # in face heights, above the face's top
UPPER_BODY_BELOW = 4.0  # in face heights, below the face's top

VAD_NAMES = ("valence", "arousal", "dominance")
# The network gives VAD on the EMOTIC annotation scale, 1 to 10 (see network.EmoticNet).
EMOTIC_VAD_MIN = 1.0
EMOTIC_VAD_MAX = 10.0
EMOTIC_VAD_MID = (EMOTIC_VAD_MIN + EMOTIC_VAD_MAX) / 2  # 5.5
EMOTIC_VAD_HALF_RANGE = (EMOTIC_VAD_MAX - EMOTIC_VAD_MIN) / 2  # 4.5

Box = Sequence[float]


def rgb_image(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """`image` checked as an (H, W, 3) uint8 picture, in RGB order (converted when `bgr`)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"the image is empty ({image.shape[1]}x{image.shape[0]})")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image


def normalized(image: np.ndarray, size: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(3, size, size) float32: resized, scaled to [0, 1], then (x - mean) / std."""
    resized = cv2.resize(image, (size, size))  # the reference's call: INTER_LINEAR
    return _scaled(resized, mean, std)


def pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """A box as the integer slice bounds the reference crops with (it truncates the floats),
    clipped to the width x height frame; an empty result is refused."""
    x1, y1, x2, y2 = (int(np.floor(float(v))) for v in box)
    x1, x2 = (min(max(v, 0), width) for v in (x1, x2))
    y1, y2 = (min(max(v, 0), height) for v in (y1, y2))
    if x2 <= x1 or y2 <= y1:
        raise InputError(
            f"the person box {tuple(float(v) for v in box)} holds no pixel of the "
            f"{width}x{height} frame"
        )
    return x1, y1, x2, y2


def context_input(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """The context network's input (3, 224, 224) from the whole RGB image."""
    return normalized(rgb_image(image, bgr), CONTEXT_SIZE, CONTEXT_MEAN, CONTEXT_STD)


def body_input(image: np.ndarray, box: Box, bgr: bool = False) -> np.ndarray:
    """The body network's input (3, 128, 128): the person box cut from the RGB image."""
    image = rgb_image(image, bgr)
    x1, y1, x2, y2 = pixel_box(box, image.shape[1], image.shape[0])
    return normalized(image[y1:y2, x1:x2], BODY_SIZE, BODY_MEAN, BODY_STD)


def inputs(image: np.ndarray, box: Box, bgr: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(context, body) inputs for one person of `image`."""
    image = rgb_image(image, bgr)
    return context_input(image), body_input(image, box)


def face_to_body_box(face_box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """The upper-body box our rule grows from a face box (see UPPER_BODY_*), clipped to the
    width x height frame."""
    x1, y1, x2, y2 = (float(v) for v in face_box)
    face_w, face_h = x2 - x1, y2 - y1
    if face_w <= 0 or face_h <= 0:
        raise InputError(f"the face box {(x1, y1, x2, y2)} is empty")
    centre = (x1 + x2) / 2
    half_width = UPPER_BODY_WIDTH * face_w / 2
    return (
        min(max(centre - half_width, 0.0), float(width)),
        min(max(y1 - UPPER_BODY_ABOVE * face_h, 0.0), float(height)),
        min(max(centre + half_width, 0.0), float(width)),
        min(max(y1 + UPPER_BODY_BELOW * face_h, 0.0), float(height)),
    )


def emotic_to_signed(vad: np.ndarray | float) -> np.ndarray:
    """VAD on the EMOTIC 1-10 scale mapped linearly onto [-1, 1] (1 -> -1, 5.5 -> 0, 10 -> 1);
    values outside 1-10 map outside [-1, 1]."""
    return (np.asarray(vad, dtype=np.float64) - EMOTIC_VAD_MID) / EMOTIC_VAD_HALF_RANGE


def signed_to_emotic(signed: np.ndarray | float) -> np.ndarray:
    """The inverse of emotic_to_signed: [-1, 1] onto the EMOTIC 1-10 scale."""
    return np.asarray(signed, dtype=np.float64) * EMOTIC_VAD_HALF_RANGE + EMOTIC_VAD_MID


@dataclass(frozen=True)
class PersonCrop:
    """EMOTIC's input for one person of a frame (`align.ModelInput`): the normalised whole
    frame and body crop. Person boxes are used as they are; face boxes (`grow_faces`: a
    detector's, or a face box file) are grown with `face_to_body_box` first. A frame that is
    its own crop (an image given without a box) is refused: the whole picture is no body."""

    description: str = (
        f"EMOTIC's inputs: the person box resized to {BODY_SIZE}x{BODY_SIZE} and the whole "
        f"frame to {CONTEXT_SIZE}x{CONTEXT_SIZE} (bilinear), each normalised"
    )
    grow_faces: bool = False

    def for_boxes(self, kind: str) -> PersonCrop:
        if kind not in BOX_KINDS:
            raise InputError(f"unknown box kind {kind!r}: use one of {', '.join(BOX_KINDS)}")
        return replace(self, grow_faces=kind == "face")

    def cut(self, frame: Frame, face: FrameFace) -> tuple[tuple[np.ndarray, np.ndarray], None]:
        if face.whole_frame:
            raise InputError(
                "--model emotic needs a person box for each image or frame: give boxes "
                "(IMAGE x1 y1 x2 y2 in a --bbox list, a box stream or CSV) or --detect"
            )
        # The warps treat channels alike: resizing the decoder's BGR and converting the small
        # result gives the pixels of resizing the RGB frame, without converting it whole.
        image = frame.bgr if frame.bgr is not None else frame.image
        height, width = image.shape[:2]
        box = face_to_body_box(face.box, width, height) if self.grow_faces else face.box
        try:
            x1, y1, x2, y2 = pixel_box(box, width, height)
        except InputError:
            return None  # a box wholly outside the frame: no person there
        context = cv2.resize(image, (CONTEXT_SIZE, CONTEXT_SIZE))
        body = cv2.resize(image[y1:y2, x1:x2], (BODY_SIZE, BODY_SIZE))
        if frame.bgr is not None:
            context = cv2.cvtColor(context, cv2.COLOR_BGR2RGB)
            body = cv2.cvtColor(body, cv2.COLOR_BGR2RGB)
        return (
            _scaled(context, CONTEXT_MEAN, CONTEXT_STD),
            _scaled(body, BODY_MEAN, BODY_STD),
        ), None

    def stack(self, items) -> tuple[np.ndarray, np.ndarray]:
        """(contexts (B, 3, 224, 224), bodies (B, 3, 128, 128))."""
        return np.stack([c for c, _ in items]), np.stack([b for _, b in items])


def _scaled(resized: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    scaled = resized.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1))


PERSON_CROP = PersonCrop()
