"""The crop DISCOVER's emonet and rbdm modules cut, written out independently of emonet-cli as
their code computes it (hcmlab/discover-modules: `_blaze_face_converter`, then DataAugmentor
with augmentation off: `get_scale_center`, `get_transform`, cv2.warpAffine's defaults).

The arithmetic is the point: the box stream's rows are float32, so the pixel box is float32
and every step on its elements stays float32 (NumPy >= 2 keeps a float32 scalar float32 with
Python numbers); only the matrix the steps are stored in is float64."""

from __future__ import annotations

import cv2
import numpy as np


def module_pixel_boxes(rows: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """BlazeFace rows (ymin, xmin, ymax, xmax, ...) of an SSI stream -> (x1, y1, x2, y2)
    pixels, in the rows' dtype: frame_shape is (height, width)."""
    height, width = frame_shape
    columns = [rows[:, 1] * width, rows[:, 0] * height, rows[:, 3] * width, rows[:, 2] * height]
    return np.swapaxes(np.vstack(columns), 0, 1)


def module_matrix(bb: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 warp of one pixel box, each scalar step in the box's own dtype."""
    center = np.array([bb[2] - (bb[2] - bb[0]) / 2, bb[3] - (bb[3] - bb[1]) / 2])
    scale = (bb[2] - bb[0] + bb[3] - bb[1]) / 220.0
    side = 200 * scale
    matrix = np.zeros((3, 3))
    matrix[0, 0] = float(size) / side
    matrix[1, 1] = float(size) / side
    matrix[0, 2] = size * (-float(center[0]) / side + 0.5)
    matrix[1, 2] = size * (-float(center[1]) / side + 0.5)
    matrix[2, 2] = 1
    return matrix[:2]


def module_crop(image: np.ndarray, bb: np.ndarray, size: int) -> np.ndarray:
    """The module's crop of an RGB uint8 frame."""
    return cv2.warpAffine(image, module_matrix(bb, size), (size, size))
