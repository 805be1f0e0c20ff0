"""The paper's scores against independent computations (scipy, plain loops) and hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from emonet_cli.evaluate import metrics

SEEDS = range(5)


def random_pair(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(-1.0, 1.0, n)
    predicted = 0.6 * truth + rng.normal(0.1, 0.3, n)
    return truth, predicted


def lin_ccc(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Lin (1989) from numpy's population covariance matrix."""
    cov = np.cov(truth, predicted, ddof=0)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (truth.mean() - predicted.mean()) ** 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_scores_match_independent_computations(seed):
    truth, predicted = random_pair(seed)
    assert metrics.pcc(truth, predicted) == pytest.approx(stats.pearsonr(truth, predicted)[0])
    assert metrics.ccc(truth, predicted) == pytest.approx(lin_ccc(truth, predicted))
    squared_errors = [(t - p) ** 2 for t, p in zip(truth, predicted)]
    assert metrics.rmse(truth, predicted) == pytest.approx(math.sqrt(sum(squared_errors) / 200))
    same_sign = [(t > 0) == (p > 0) for t, p in zip(truth, predicted)]
    assert metrics.sagr(truth, predicted) == pytest.approx(sum(same_sign) / 200)
    assert metrics.regression_scores(truth, predicted) == {
        "ccc": metrics.ccc(truth, predicted),
        "pcc": metrics.pcc(truth, predicted),
        "rmse": metrics.rmse(truth, predicted),
        "sagr": metrics.sagr(truth, predicted),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_scores_match_loops(seed):
    rng = np.random.default_rng(seed)
    nclass = 8
    truth = rng.integers(0, nclass - 1, 300)  # the last class never occurs as a label
    predicted = np.where(rng.random(300) < 0.5, truth, rng.integers(0, nclass, 300))

    assert metrics.acc(truth, predicted) == pytest.approx(
        np.count_nonzero(truth == predicted) / 300
    )
    confusion = metrics.confusion_matrix(truth, predicted, nclass)
    expected = np.zeros((nclass, nclass), dtype=int)
    for t, p in zip(truth, predicted):
        expected[t, p] += 1
    np.testing.assert_array_equal(confusion, expected)

    recall = metrics.per_class_recall(confusion)
    for c in range(nclass - 1):
        labelled = truth == c
        assert recall[c] == pytest.approx(np.mean(predicted[labelled] == c))
    assert math.isnan(recall[nclass - 1])


def test_perfect_prediction():
    truth, _ = random_pair(0)
    assert metrics.ccc(truth, truth) == pytest.approx(1.0)
    assert metrics.pcc(truth, truth) == pytest.approx(1.0)
    assert metrics.sagr(truth, truth) == 1.0
    assert metrics.rmse(truth, truth) == 0.0
    classes = np.arange(8).repeat(3)
    assert metrics.acc(classes, classes) == 1.0
    np.testing.assert_array_equal(
        metrics.per_class_recall(metrics.confusion_matrix(classes, classes, 8)), 1.0
    )


def test_constant_offset_lowers_ccc_but_not_pcc():
    truth = np.array([1.0, 2.0, 3.0])
    shifted = truth + 1.0
    assert metrics.pcc(truth, shifted) == pytest.approx(1.0)
    # variance 2/3 each, covariance 2/3, squared mean difference 1: 2(2/3) / (4/3 + 1) = 4/7
    assert metrics.ccc(truth, shifted) == pytest.approx(4 / 7)
    assert metrics.rmse(truth, shifted) == pytest.approx(1.0)


def test_scale_error_lowers_ccc_but_not_pcc():
    truth = np.array([-0.5, 0.0, 0.5, 1.0])
    doubled = 2.0 * truth
    assert metrics.pcc(truth, doubled) == pytest.approx(1.0)
    assert metrics.ccc(truth, doubled) < 0.9


def test_sagr_counts_zero_as_its_own_sign():
    truth = np.array([0.0, 0.5, -0.5, 0.0])
    predicted = np.array([0.1, 0.2, -0.1, 0.0])
    assert metrics.sagr(truth, predicted) == pytest.approx(3 / 4)


def test_undefined_correlations_are_nan():
    constant = np.full(5, 0.3)
    varying = np.linspace(-1, 1, 5)
    assert math.isnan(metrics.pcc(constant, varying))
    assert math.isnan(metrics.ccc(constant, constant))
    # one constant series: no covariance, but the disagreement is well defined
    assert metrics.ccc(constant, varying) == 0.0


@pytest.mark.parametrize(
    "truth, predicted",
    [([], []), ([1.0, 2.0], [1.0]), ([[1.0, 2.0]], [[1.0, 2.0]])],
)
def test_bad_shapes_are_refused(truth, predicted):
    for score in (metrics.acc, metrics.ccc, metrics.pcc, metrics.rmse, metrics.sagr):
        with pytest.raises(ValueError):
            score(truth, predicted)


def test_confusion_matrix_refuses_classes_out_of_range():
    with pytest.raises(ValueError, match="0..4"):
        metrics.confusion_matrix([0, 5], [0, 1], 5)


finite = st.floats(-1.0, 1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=40))
def test_ccc_is_bounded_by_pcc(pairs):
    truth, predicted = (np.array(series) for series in zip(*pairs))
    assume(np.ptp(truth) > 1e-6 and np.ptp(predicted) > 1e-6)  # else undefined or all rounding
    pcc = metrics.pcc(truth, predicted)
    ccc = metrics.ccc(truth, predicted)
    assert -1.0 <= pcc <= 1.0
    assert abs(ccc) <= abs(pcc) + 1e-9
