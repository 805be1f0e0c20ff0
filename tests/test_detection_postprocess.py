"""The torch-free half of the detector: anchors, decoding, weighted NMS, and DISCOVER's
per-frame semantics (best face, force_square_ar, repeat_last) and box streams."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from emonet_cli.faces.detection.boxstream import (
    BOX_MEDIA_TYPE,
    KEYPOINT_MEDIA_TYPE,
    BoxStreamWriter,
    keypoint_stream_path,
    stream_rows,
)
from emonet_cli.faces.detection.detector import detected_faces, kept_row, square_box
from emonet_cli.faces.detection.postprocess import (
    ANCHORS,
    NUM_ANCHORS,
    decode,
    detections_from_outputs,
    scores_from_logits,
    weighted_nms,
)
from emonet_cli.faces.people import People, best_face
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.frames import Frame, MediaInfo

GOLDEN = json.loads((Path(__file__).parent / "data" / "blazeface" / "golden.json").read_text())


def detection(box, score, keypoints=None) -> np.ndarray:
    """A 17-value detection from a box (ymin, xmin, ymax, xmax) and a score."""
    keypoints = np.arange(12) / 100 if keypoints is None else keypoints
    return np.concatenate([box, keypoints, [score]]).astype(np.float32)


class GivenDetections:
    """A FaceSource of the detector's kind whose detections (n, 17) per frame are given."""

    def __init__(self, per_frame: list[np.ndarray], size: tuple[int, int], square: bool = True):
        self.per_frame, self.size, self.square = per_frame, size, square
        self.warnings: list[str] = []

    def faces(self, frames):
        return [
            detected_faces(self.per_frame[f.index], self.size, square=self.square) for f in frames
        ]


def kept_rows(per_frame, size=(640, 480), square=True, repeat_last=True) -> list[np.ndarray]:
    """The row the one person (the best face) keeps in each frame, as analysed and written."""
    info = MediaInfo(Path("clip.mp4"), size[0], size[1], 25.0, len(per_frame), False)
    people = People(GivenDetections(per_frame, size, square), info, repeat_last=repeat_last)
    frames = [Frame(index, index / 25, None) for index in range(len(per_frame))]
    return [faces[None].detection for faces in people.faces(frames)]


def best(detections: np.ndarray, min_score: float = 0.5) -> np.ndarray | None:
    face = best_face(detected_faces(detections, (640, 480), min_score, square=False))
    return None if face is None else face.detection


def test_anchors_follow_the_network_output_order():
    assert ANCHORS.shape == (NUM_ANCHORS, 2) == (896, 2)
    # 16x16 cells with 2 anchors each, row by row, then 8x8 cells with 6 each.
    np.testing.assert_allclose(ANCHORS[0], ANCHORS[1])
    np.testing.assert_allclose(ANCHORS[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(ANCHORS[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(ANCHORS[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(ANCHORS[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(ANCHORS[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(ANCHORS[-1], [7.5 / 8, 7.5 / 8])


def test_decoding_offsets_from_the_anchor_in_input_pixels():
    raw = np.zeros((1, 16), np.float32)
    raw[0, :4] = [25.6, -12.8, 64, 32]  # x, y offset; width, height (of 256 pixels)
    raw[0, 4:6] = [-25.6, 51.2]  # first keypoint x, y
    anchor = np.array([[0.5, 0.25]], np.float32)
    decoded = decode(raw, anchor)[0]
    # Centre (0.6, 0.2), size 0.25 x 0.125: ymin, xmin, ymax, xmax.
    np.testing.assert_allclose(decoded[:4], [0.1375, 0.475, 0.2625, 0.725], atol=1e-7)
    np.testing.assert_allclose(decoded[4:6], [0.4, 0.45], atol=1e-7)
    np.testing.assert_allclose(decoded[6:], np.tile(anchor[0], 5), atol=1e-7)


def test_scores_are_clipped_before_the_sigmoid_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = scores_from_logits(np.array([-1e4, -100, 0, 2, 1e4], np.float32))
    assert scores.dtype == np.float32
    assert scores[0] == scores[1] > 0  # -1e4 scores as -100
    np.testing.assert_allclose(scores[2:], [0.5, 1 / (1 + np.exp(-2)), 1.0], rtol=1e-6)


def test_candidates_are_the_anchors_scoring_at_least_the_threshold():
    regressors = np.zeros((NUM_ANCHORS, 16), np.float32)
    logits = np.full(NUM_ANCHORS, -10.0, np.float32)
    logits[[3, 700]] = [0.0, 5.0]  # scores 0.5 (kept: >=) and 0.993
    found = detections_from_outputs(regressors, logits, min_score=0.5)
    assert len(found) == 2
    np.testing.assert_allclose(found[:, 16], [0.5, scores_from_logits(np.float32(5.0))])
    np.testing.assert_allclose(found[1, 4:6], ANCHORS[700])


def test_weighted_nms_blends_overlapping_detections_by_score():
    a = detection([0.10, 0.10, 0.30, 0.30], 0.9, np.full(12, 0.2))
    b = detection([0.12, 0.12, 0.32, 0.32], 0.6, np.full(12, 0.5))  # IoU with a: 0.68
    c = detection([0.60, 0.60, 0.80, 0.80], 0.7)  # overlaps nothing
    merged = weighted_nms(np.stack([b, c, a]))
    assert merged.shape == (2, 17)
    # Best first: the blend of a and b (its best member 0.9), then c unchanged.
    expected_coords = (0.9 * a[:16] + 0.6 * b[:16]) / 1.5
    np.testing.assert_allclose(merged[0, :16], expected_coords, rtol=1e-6)
    assert merged[0, 16] == pytest.approx(0.75)  # mean score, not MediaPipe's maximum
    np.testing.assert_array_equal(merged[1], c)


def test_weighted_nms_needs_iou_above_the_threshold():
    a = detection([0.0, 0.0, 0.5, 0.5], 0.9)
    b = detection([0.0, 0.0, 0.5, 1.0], 0.8)  # IoU exactly 0.5
    assert len(weighted_nms(np.stack([a, b]), threshold=0.5)) == 2
    assert len(weighted_nms(np.stack([a, b]), threshold=0.49)) == 1


def test_weighted_nms_of_nothing_and_of_degenerate_boxes():
    assert weighted_nms(np.zeros((0, 17), np.float32)).shape == (0, 17)
    flat = detection([0.5, 0.5, 0.5, 0.5], 0.8)  # zero area: NaN IoU with itself
    assert len(weighted_nms(np.stack([flat, flat]))) == 2


def test_best_face_is_the_highest_score_above_the_threshold():
    low, high = detection([0, 0, 0.1, 0.1], 0.6), detection([0.5, 0.5, 0.6, 0.6], 0.8)
    np.testing.assert_array_equal(best(np.stack([low, high])), high)
    assert best(np.stack([low, high]), min_score=0.9) is None
    assert best(np.zeros((0, 17), np.float32)) is None


@pytest.mark.parametrize("name", ["small_face_640x480", "two_faces_640x360", "portrait_360x640",
                                  "border_cut_640x480", "astronaut_512"])  # fmt: skip
def test_best_face_and_squaring_give_the_golden_stream_row(name):
    frame = GOLDEN["frames"][name]
    width, height = frame["size"]
    face = best(np.array(frame["detections_after_nms"], np.float32))
    box_row, _ = stream_rows(square_box(face, (width, height)))
    np.testing.assert_allclose(box_row, frame["stream_row"], atol=1e-6)


@pytest.mark.parametrize("size", [(640, 480), (360, 640), (500, 500)])
def test_squared_boxes_are_square_in_pixels_and_keep_their_centre(size):
    width, height = size
    face = detection([0.40, 0.30, 0.60, 0.50], 0.9)  # square in normalised coordinates
    squared = square_box(face, size)
    ymin, xmin, ymax, xmax = squared[:4].astype(np.float64)
    assert (ymax - ymin) * height == pytest.approx((xmax - xmin) * width, rel=1e-6)
    np.testing.assert_allclose([(ymin + ymax) / 2, (xmin + xmax) / 2], [0.5, 0.4], rtol=1e-6)
    np.testing.assert_array_equal(squared[4:], face[4:])  # keypoints and score unchanged


def test_repeat_last_fills_with_the_last_face_at_confidence_zero():
    first, second = detection([0.1, 0.2, 0.3, 0.4], 0.9), detection([0.5, 0.5, 0.7, 0.7], 0.6)
    rows, last = [], None
    for d in (None, None, first, None, second, None, None):
        last = kept_row(d, last)
        rows.append(last)
    before_any = np.zeros(17, np.float32)
    before_any[2:4] = 1
    np.testing.assert_array_equal(rows[0], before_any)
    np.testing.assert_array_equal(rows[1], before_any)
    np.testing.assert_array_equal(rows[2], first)
    np.testing.assert_array_equal(rows[3][:16], first[:16])
    assert rows[3][16] == 0
    np.testing.assert_array_equal(rows[4], second)
    for row in rows[5:]:
        np.testing.assert_array_equal(row[:16], second[:16])
        assert row[16] == 0


def test_the_selector_squares_before_repeating_and_zeroes_without_repeat():
    face = detection([0.40, 0.30, 0.60, 0.50], 0.9)
    nothing = np.zeros((0, 17), np.float32)
    kept = kept_rows([face[None], nothing])
    np.testing.assert_array_equal(kept[0], square_box(face, (640, 480)))
    np.testing.assert_array_equal(kept[1][:16], kept[0][:16])  # the squared box repeated
    assert kept[1][16] == 0
    plain = kept_rows([face[None], nothing], square=False, repeat_last=False)
    np.testing.assert_array_equal(plain[0], face)
    np.testing.assert_array_equal(plain[1], np.zeros(17))


def test_stream_rows_swap_keypoints_to_y_x():
    face = detection([0.1, 0.2, 0.3, 0.4], 0.9, np.arange(12, dtype=np.float32))
    box_row, keypoint_row = stream_rows(face)
    np.testing.assert_array_equal(box_row, face[[0, 1, 2, 3, 16]])
    np.testing.assert_array_equal(keypoint_row[:12], [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10])
    assert keypoint_row[12] == face[16]


def test_box_stream_writer_writes_discover_streams(tmp_path):
    sequence = [None, [0.40, 0.30, 0.60, 0.50], None, [0.45, 0.35, 0.55, 0.45], None]
    writer = BoxStreamWriter(tmp_path / "clip", (640, 480), sr=25.0)
    found = [
        np.zeros((0, 17), np.float32) if b is None else detection(b, 0.8)[None] for b in sequence
    ]
    for kept in kept_rows(found):
        writer.append(kept[None])
    boxes_path, keypoints_path = writer.close()
    assert boxes_path == tmp_path / "clip.stream"
    assert keypoints_path == keypoint_stream_path(boxes_path) == tmp_path / "clip.keypoints.stream"

    boxes, keypoints = read_stream(boxes_path), read_stream(keypoints_path)
    assert boxes.data.shape == (5, 5) and keypoints.data.shape == (5, 13)
    assert boxes.sr == keypoints.sr == 25.0
    assert (boxes.ftype, boxes.type) == ("BINARY", "FLOAT")
    assert boxes.meta == {"type": BOX_MEDIA_TYPE, "size": "640:480"}
    assert keypoints.meta == {"type": KEYPOINT_MEDIA_TYPE, "size": "640:480"}
    grow = 0.2 * (640 / 480 - 1) / 2  # the height stretched to a square in pixels
    expected = [
        [0, 0, 1, 1, 0],
        [0.40 - grow, 0.30, 0.60 + grow, 0.50, 0.8],
        [0.40 - grow, 0.30, 0.60 + grow, 0.50, 0],
        [0.45 - grow / 2, 0.35, 0.55 + grow / 2, 0.45, 0.8],
        [0.45 - grow / 2, 0.35, 0.55 + grow / 2, 0.45, 0],
    ]
    np.testing.assert_allclose(boxes.data, expected, atol=1e-6)
    yx = np.arange(12).reshape(6, 2)[:, ::-1].ravel() / 100
    np.testing.assert_allclose(keypoints.data[:, :12], [np.zeros(12)] + [yx] * 4, atol=1e-7)
    np.testing.assert_array_equal(keypoints.data[:, 12], boxes.data[:, 4])


def test_an_empty_box_stream_leaves_no_files(tmp_path):
    writer = BoxStreamWriter(tmp_path / "empty.stream", (64, 48), sr=1.0)
    with pytest.raises(ValueError, match="no samples"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_the_torch_free_modules_import_no_torch():
    code = (
        "import sys; import emonet_cli.faces.detection.postprocess, "
        "emonet_cli.faces.detection.boxstream, emonet_cli.analysis.detected; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
