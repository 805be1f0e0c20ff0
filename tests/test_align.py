"""The aligner reproduces the published crop: the golden affine and the golden crop image."""

from __future__ import annotations

import json

import cv2
import numpy as np
import skimage.data
from standin import DATA

from emonet_cli.faces.align import (
    affine_from_box,
    affine_full_frame,
    apply_affine,
    crop_face,
    crop_frame,
    invert_affine,
)
from emonet_cli.media.frames import Frame
from emonet_cli.media.images import read_image

GOLDEN = json.loads((DATA / "golden.json").read_text())


def test_affine_for_the_astronaut_box_is_the_published_one():
    matrix = affine_from_box(GOLDEN["astronaut_bbox_xyxy"])
    np.testing.assert_allclose(matrix, GOLDEN["astronaut_affine_2x3"], rtol=0, atol=1e-12)


def test_crop_of_the_astronaut_is_the_published_image():
    matrix = affine_from_box(GOLDEN["astronaut_bbox_xyxy"])
    crop = crop_face(skimage.data.astronaut(), matrix)
    np.testing.assert_array_equal(crop, read_image(DATA / "astronaut_face.png"))


def test_square_of_side_200_scale_maps_onto_the_crop():
    x1, y1, x2, y2 = 100.0, 50.0, 160.0, 130.0
    matrix = affine_from_box((x1, y1, x2, y2))
    side = 200 * ((x2 - x1) + (y2 - y1)) / 220
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    corners = np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]])
    np.testing.assert_allclose(apply_affine(matrix, corners), [[0, 0], [256, 256]], atol=1e-9)
    back = apply_affine(invert_affine(matrix), [[0, 0], [256, 256]])
    np.testing.assert_allclose(back, corners, atol=1e-9)


def test_outside_the_frame_is_black():
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    crop = crop_face(image, affine_from_box((60, 60, 140, 140)))  # reaches past the corner
    assert crop[5, 5].tolist() == [200, 200, 200]
    assert crop[250, 250].tolist() == [0, 0, 0]


def test_full_frame_resizes_the_whole_image():
    matrix = affine_full_frame(512, 400)
    np.testing.assert_allclose(apply_affine(matrix, [[512, 400]]), [[256, 256]])


def test_cropping_the_bgr_frame_gives_the_crop_of_the_rgb_frame_bit_for_bit():
    """The pipeline warps the decoder's BGR frame and converts only the crop."""
    rng = np.random.default_rng(11)
    bgr = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    for box in ((30, 10, 70, 60), (-20, -10, 40, 50), (100, 40, 160, 100)):
        matrix = affine_from_box(box)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(
            crop_frame(Frame(0, 0.0, bgr=bgr), matrix), crop_face(rgb, matrix)
        )
        np.testing.assert_array_equal(
            crop_frame(Frame(0, 0.0, rgb), matrix), crop_face(rgb, matrix)
        )
