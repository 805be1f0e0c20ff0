"""EMOTIC's evaluation, as the reference's test.py computes it (numpy only): average precision
per category (sklearn's average_precision_score, reimplemented here), their mean, and the
mean absolute error of valence, arousal and dominance; plus the categories and the published
threshold rule.

Arrays are (samples, categories) here; the reference transposes them to (26, samples).
"""

from __future__ import annotations

import numpy as np

# The 26 EMOTIC categories in the order of the network's outputs (the reference's `cat`).
CATEGORIES = (
    "Affection",
    "Anger",
    "Annoyance",
    "Anticipation",
    "Aversion",
    "Confidence",
    "Disapproval",
    "Disconnection",
    "Disquietment",
    "Doubt/Confusion",
    "Embarrassment",
    "Engagement",
    "Esteem",
    "Excitement",
    "Fatigue",
    "Fear",
    "Happiness",
    "Pain",
    "Peace",
    "Pleasure",
    "Sadness",
    "Sensitivity",
    "Suffering",
    "Surprise",
    "Sympathy",
    "Yearning",
)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of one category, as sklearn's average_precision_score: the sum over
    distinct score thresholds (high to low) of the recall gained times the precision there;
    samples with equal scores enter together. 0.0 without positives (sklearn warns)."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    positives = int(labels.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores, ranked_labels = scores[order], labels[order].astype(np.float64)
    # The last sample of each run of equal scores: one threshold each.
    ends = np.r_[np.flatnonzero(np.diff(ranked_scores)), ranked_scores.size - 1]
    true_pos = np.cumsum(ranked_labels)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def mean_average_precision(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-category average precision (float64, one per column) and their mean."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    if labels.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(
            f"expected two (samples, categories) arrays, got {labels.shape} and {scores.shape}"
        )
    per_category = np.array(
        [average_precision(labels[:, k], scores[:, k]) for k in range(labels.shape[1])]
    )
    return per_category, float(per_category.mean())


def vad_mean_absolute_error(predicted: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean absolute error per dimension (valence, arousal, dominance) and their mean, on
    the scale both are given in (the reference reports the 1-10 scale)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if predicted.ndim != 2 or predicted.shape != labels.shape:
        raise ValueError(
            f"expected two (samples, 3) arrays, got {predicted.shape} and {labels.shape}"
        )
    per_dimension = np.abs(predicted - labels).mean(axis=0)
    return per_dimension, float(per_dimension.mean())


def decide_categories(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The reference's rule: a category is reported when its raw score is strictly greater
    than its threshold (torch.gt in inference.py)."""
    return np.asarray(scores) > np.asarray(thresholds)


def equal_precision_recall_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """One category's threshold as the reference's test.py chooses it on the validation
    split (sklearn's precision_recall_curve, then the first point where precision == recall):
    going through the distinct scores t from the lowest up, precision = TP/(people with
    score >= t) and recall = TP/positives, each one float64 division; the first t where the
    two are equal is the threshold. That is the lowest t at which exactly `positives` people
    score t or more (or, if lower, at which none of those scoring t or more is positive).
    0.0 when no t qualifies, or the category has no positive."""
    labels = np.asarray(labels).reshape(-1).astype(np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positives = labels.sum()
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    ranked = scores[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # one per distinct score
    true_pos = np.cumsum(labels[order])[ends]
    predicted = (ends + 1).astype(np.float64)
    precision, recall = true_pos / predicted, true_pos / positives
    equal = np.flatnonzero(precision == recall)
    return float(ranked[ends[equal[-1]]]) if equal.size else 0.0  # the lowest such score


def category_thresholds(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """equal_precision_recall_threshold of each column, as float32 (the reference saves
    `val_thresholds.npy` as float32)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    return np.array(
        [
            equal_precision_recall_threshold(labels[:, k], scores[:, k])
            for k in range(scores.shape[1])
        ],
        dtype=np.float32,
    )
