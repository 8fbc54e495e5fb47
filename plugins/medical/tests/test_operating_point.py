"""The decision threshold is chosen on validation predictions by the clinical rule, checked by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from scipy.stats import binom

from automl.api import DataError
from automl_medical.metrics import sensitivity, specificity
from automl_medical.operating_point import choose_operating_point


def _all_points(y, p):
    """(threshold, sensitivity, specificity, their lower 95% bounds) of every distinct decision on these rows:
    the stratified bootstrap of a rate at a fixed threshold is binomial, its 2.5% quantile the lower bound."""
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    out = []
    for t in np.append(np.unique(p), np.inf):
        sens, spec = sensitivity(y, p, t), specificity(y, p, t)
        out.append((t, sens, spec, binom.ppf(0.025, n_pos, sens) / n_pos, binom.ppf(0.025, n_neg, spec) / n_neg))
    return out


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_min_sensitivity_is_the_most_specific_point_that_reaches_the_sensitivity(diagnostic_predictions, target):
    y, p = diagnostic_predictions["y_val"], diagnostic_predictions["p_val"]
    point = choose_operating_point(y, p, "min_sensitivity", target)
    best = max(spec for _, _, spec, sens_low, _ in _all_points(y, p) if sens_low >= target)
    # the target is met by the lower bound of sensitivity's interval, not its point estimate
    assert point.validation_lower_bound >= target and point.validation_sensitivity >= point.validation_lower_bound
    assert point.validation_specificity == pytest.approx(best)
    # the stored threshold reproduces the reported validation rates
    assert sensitivity(y, p, point.threshold) == pytest.approx(point.validation_sensitivity)
    assert specificity(y, p, point.threshold) == pytest.approx(point.validation_specificity)
    assert point.validation_specificity < 1  # informative fixture: the rule has a real trade-off


@pytest.mark.parametrize("target", [0.8, 0.95])
def test_min_specificity_is_the_most_sensitive_point_that_reaches_the_specificity(diagnostic_predictions, target):
    y, p = diagnostic_predictions["y_val"], diagnostic_predictions["p_val"]
    point = choose_operating_point(y, p, "min_specificity", target)
    best = max(sens for _, sens, _, _, spec_low in _all_points(y, p) if spec_low >= target)
    assert point.validation_lower_bound >= target
    assert point.validation_sensitivity == pytest.approx(best)
    assert specificity(y, p, point.threshold) == pytest.approx(point.validation_specificity)


def test_youden_and_fixed(diagnostic_predictions):
    y, p = diagnostic_predictions["y_val"], diagnostic_predictions["p_val"]
    youden = choose_operating_point(y, p, "youden")
    best = max(sens + spec for _, sens, spec, _, _ in _all_points(y, p))
    assert youden.validation_sensitivity + youden.validation_specificity == pytest.approx(best)
    fixed = choose_operating_point(y, p, "fixed", threshold=0.3)
    assert fixed.threshold == 0.3 and fixed.validation_sensitivity == pytest.approx(sensitivity(y, p, 0.3))


def test_threshold_sits_between_the_scores_it_separates(diagnostic_predictions):
    y, p = diagnostic_predictions["y_val"], diagnostic_predictions["p_val"]
    t = choose_operating_point(y, p, "min_sensitivity", 0.9).threshold
    assert t not in set(p)
    above, below = p[p >= t].min(), p[p < t].max()
    assert t == pytest.approx((above + below) / 2)


def test_a_single_class_in_validation_is_a_clear_error():
    with pytest.raises(DataError, match="single class"):
        choose_operating_point(np.ones(10, int), np.linspace(0, 1, 10), "min_sensitivity")
