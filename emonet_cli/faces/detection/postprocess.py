"""From BlazeFace's raw outputs to face detections: anchors, decoding, weighted NMS.

Follows MediaPipe's face_detection_back graph (SSD anchors, TensorsToDetections) as ported to
PyTorch by Hollemans' BlazeFace-PyTorch and used by DISCOVER's blazeface module, including
that port's one change to MediaPipe: a blended detection's score is the mean of the scores it
blends, not the highest one.

A detection is a row of DETECTION_COLUMNS values, normalised to the frame (the network sees
the whole frame squashed to 256x256, so its coordinates are the frame's):
`ymin, xmin, ymax, xmax`, six keypoints as `x, y` pairs, then the score.
"""

from __future__ import annotations

import numpy as np

INPUT_SIZE = 256
# Feature maps the heads read, as (cells per side, anchors per cell): the 16x16 map of
# stride 16 and the 8x8 map of stride 32, where MediaPipe merges three anchor layers of
# 2 anchors each into 6.
ANCHOR_GRIDS = ((16, 2), (8, 6))
NUM_ANCHORS = sum(cells * cells * per_cell for cells, per_cell in ANCHOR_GRIDS)  # 896
NUM_KEYPOINTS = 6
NUM_COORDS = 4 + 2 * NUM_KEYPOINTS  # regressor values per anchor
DETECTION_COLUMNS = NUM_COORDS + 1
BOX = slice(0, 4)
KEYPOINTS = slice(4, NUM_COORDS)
SCORE = NUM_COORDS
# Raw scores are clipped before the sigmoid, as MediaPipe's graph does.
SCORE_CLIP = 100.0
MIN_SCORE = 0.5  # DISCOVER's min_score_thresh
IOU_THRESHOLD = 0.3  # DISCOVER's (and MediaPipe's) min_suppression_threshold


def anchor_centres() -> np.ndarray:
    """(NUM_ANCHORS, 2) x, y centres in [0, 1], in the order of the network's outputs: grid
    by grid, row by row, cell by cell. All anchors have size 1 (fixed_anchor_size)."""
    centres = []
    for cells, per_cell in ANCHOR_GRIDS:
        offsets = (np.arange(cells, dtype=np.float64) + 0.5) / cells
        y, x = np.meshgrid(offsets, offsets, indexing="ij")
        grid = np.stack([x.ravel(), y.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


ANCHORS = anchor_centres()


def scores_from_logits(logits: np.ndarray) -> np.ndarray:
    """Sigmoid of the clipped raw scores."""
    # In float64, where exp(100) does not overflow.
    clipped = np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    return (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)


def decode(regressors: np.ndarray, anchors: np.ndarray = ANCHORS) -> np.ndarray:
    """(..., n, NUM_COORDS) regressor outputs, in input pixels relative to their anchors ->
    normalised `ymin, xmin, ymax, xmax` and keypoint `x, y` pairs (the same shape)."""
    raw = regressors.astype(np.float32) / np.float32(INPUT_SIZE)
    # Anchors are of size 1, so the offsets and sizes need no scaling by them.
    points = raw[..., 4:].reshape(*raw.shape[:-1], NUM_KEYPOINTS, 2) + anchors[:, None, :]
    x_centre = raw[..., 0] + anchors[:, 0]
    y_centre = raw[..., 1] + anchors[:, 1]
    half_w, half_h = raw[..., 2] / 2, raw[..., 3] / 2
    box = np.stack(
        [y_centre - half_h, x_centre - half_w, y_centre + half_h, x_centre + half_w], axis=-1
    )
    points = points.reshape(*raw.shape[:-1], 2 * NUM_KEYPOINTS)
    return np.concatenate([box, points], axis=-1)


def detections_from_outputs(
    regressors: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE
) -> np.ndarray:
    """One frame's raw outputs, (NUM_ANCHORS, NUM_COORDS) and (NUM_ANCHORS,), -> its
    candidate detections scoring at least `min_score`, in anchor order."""
    scores = scores_from_logits(logits)
    keep = scores >= min_score
    coords = decode(regressors[keep], ANCHORS[keep])
    return np.concatenate([coords, scores[keep, None]], axis=1)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one `ymin, xmin, ymax, xmax` box with each of `others`."""
    low = np.maximum(box[:2], others[:, :2])
    high = np.minimum(box[2:], others[:, 2:])
    intersection = np.prod(np.clip(high - low, 0, None), axis=1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / (area + other_areas - intersection)


def weighted_nms(detections: np.ndarray, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """BlazeFace's blending suppression: the best remaining detection and every remaining one
    overlapping it by IoU > `threshold` become one detection whose 16 coordinates are their
    score-weighted mean and whose score is their mean score; a detection overlapping nothing
    is kept as it is. Output rows are in order of their best member's score."""
    if len(detections) == 0:
        return np.zeros((0, DETECTION_COLUMNS), np.float32)
    remaining = np.argsort(-detections[:, SCORE], kind="stable")
    merged = []
    while len(remaining):
        best = detections[remaining[0]]
        overlapping = iou(best[BOX], detections[remaining, BOX]) > threshold
        # The best one always belongs to its own group (a zero-area box has a NaN IoU with
        # itself, which would otherwise never leave `remaining`).
        overlapping[0] = True
        group = detections[remaining[overlapping]]
        remaining = remaining[~overlapping]
        if len(group) == 1:
            merged.append(best)
            continue
        weights = group[:, SCORE : SCORE + 1]
        coords = (group[:, :SCORE] * weights).sum(axis=0) / weights.sum()
        merged.append(np.append(coords, weights.mean()))
    return np.asarray(merged, dtype=np.float32)
