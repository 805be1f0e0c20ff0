"""The scores of the EmoNet paper: ACC for expression; CCC, PCC, RMSE and SAGR for valence and
arousal; plus the confusion matrix and per-class recall behind ACC.

Correlations use population (1/n) moments, as the published evaluation does. A correlation that
is undefined (a constant series) is NaN rather than a made-up number.
"""

from __future__ import annotations

import numpy as np


def paired(truth, predicted) -> tuple[np.ndarray, np.ndarray]:
    """Both series as float64 1-D arrays of one non-zero length."""
    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if truth.ndim != 1 or truth.shape != predicted.shape:
        raise ValueError(
            f"expected two 1-D series of one length, got shapes {truth.shape} and {predicted.shape}"
        )
    if truth.size == 0:
        raise ValueError("cannot score empty series")
    return truth, predicted


def acc(truth, predicted) -> float:
    """Accuracy: the fraction of predicted classes equal to the true ones."""
    truth, predicted = paired(truth, predicted)
    return float(np.mean(truth == predicted))


def pcc(truth, predicted) -> float:
    """Pearson correlation coefficient; NaN when either series is constant."""
    truth, predicted = paired(truth, predicted)
    truth_dev = truth - truth.mean()
    predicted_dev = predicted - predicted.mean()
    norm = np.sqrt(np.sum(truth_dev**2) * np.sum(predicted_dev**2))
    if norm == 0.0:
        return float("nan")
    return float(np.clip(np.sum(truth_dev * predicted_dev) / norm, -1.0, 1.0))


def ccc(truth, predicted) -> float:
    """Lin's concordance correlation coefficient, 2 cov / (var_t + var_p + (mean_t - mean_p)^2),
    which unlike PCC also penalises offsets and scale errors; NaN when both series are one
    constant."""
    truth, predicted = paired(truth, predicted)
    truth_dev = truth - truth.mean()
    predicted_dev = predicted - predicted.mean()
    covariance = np.mean(truth_dev * predicted_dev)
    denominator = (
        np.mean(truth_dev**2) + np.mean(predicted_dev**2) + (truth.mean() - predicted.mean()) ** 2
    )
    if denominator == 0.0:
        return float("nan")
    return float(2.0 * covariance / denominator)


def rmse(truth, predicted) -> float:
    """Root mean square error."""
    truth, predicted = paired(truth, predicted)
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def sagr(truth, predicted) -> float:
    """Sign agreement: the fraction of pairs with the same sign. As in the published
    evaluation, zero is a sign of its own, so a label of exactly 0 only agrees with 0."""
    truth, predicted = paired(truth, predicted)
    return float(np.mean(np.sign(truth) == np.sign(predicted)))


def regression_scores(truth, predicted) -> dict[str, float]:
    """CCC, PCC, RMSE and SAGR of one dimension (valence or arousal)."""
    return {
        "ccc": ccc(truth, predicted),
        "pcc": pcc(truth, predicted),
        "rmse": rmse(truth, predicted),
        "sagr": sagr(truth, predicted),
    }


def confusion_matrix(truth, predicted, nclass: int) -> np.ndarray:
    """(nclass, nclass) counts: row = true class, column = predicted class."""
    truth = np.asarray(truth)
    predicted = np.asarray(predicted)
    if truth.ndim != 1 or truth.shape != predicted.shape:
        raise ValueError(
            f"expected two 1-D series of one length, got shapes {truth.shape} and {predicted.shape}"
        )
    for name, labels in (("true", truth), ("predicted", predicted)):
        if labels.size and (labels.min() < 0 or labels.max() >= nclass):
            raise ValueError(f"{name} classes must lie in 0..{nclass - 1}")
    flat = truth.astype(np.int64) * nclass + predicted.astype(np.int64)
    return np.bincount(flat, minlength=nclass * nclass).reshape(nclass, nclass)


def per_class_recall(confusion: np.ndarray) -> np.ndarray:
    """For each true class, the fraction predicted as that class; NaN for absent classes."""
    confusion = np.asarray(confusion)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)
