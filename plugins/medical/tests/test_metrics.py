"""The medical metrics against scikit-learn and torchmetrics, on real predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automl_medical import metrics as med


@pytest.fixture(scope="module")
def yp(diagnostic_predictions):
    d = diagnostic_predictions
    return np.concatenate([d["y_val"], d["y_test"]]), np.concatenate([d["p_val"], d["p_test"]])


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_rates_at_a_threshold_match_scikit_learn_and_torchmetrics(yp, threshold):
    import torch
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_score, recall_score
    from torchmetrics.functional.classification import binary_specificity

    y, p = yp
    pred = (p >= threshold).astype(int)
    assert med.confusion(y, p, threshold) == tuple(int(v) for v in confusion_matrix(y, pred).ravel())
    assert med.sensitivity(y, p, threshold) == pytest.approx(recall_score(y, pred))
    assert med.ppv(y, p, threshold) == pytest.approx(precision_score(y, pred))
    assert med.npv(y, p, threshold) == pytest.approx(precision_score(1 - y, 1 - pred))
    assert med.balanced_accuracy(y, p, threshold) == pytest.approx(balanced_accuracy_score(y, pred))
    spec = binary_specificity(torch.tensor(p), torch.tensor(y), threshold=threshold)
    assert med.specificity(y, p, threshold) == pytest.approx(float(spec), abs=1e-6)
    # the fixture is informative: neither rate is trivially 0 or 1 at the middle threshold
    if threshold == 0.5:
        assert 0.5 < med.sensitivity(y, p, threshold) < 1 and 0.5 < med.specificity(y, p, threshold) < 1


@pytest.mark.parametrize("bins", [10, 15])
def test_expected_calibration_error_matches_torchmetrics(yp, bins):
    import torch
    from torchmetrics.functional.classification import binary_calibration_error

    y, p = yp
    expected = binary_calibration_error(torch.tensor(p, dtype=torch.float64), torch.tensor(y), n_bins=bins)
    assert med.expected_calibration_error(y, p, bins) == pytest.approx(float(expected), abs=1e-6)
    assert med.expected_calibration_error(y, p, bins) > 0.01  # a real model is not perfectly calibrated


def test_undefined_rates_raise_value_error_so_the_bootstrap_skips_them(yp):
    y, p = yp
    with pytest.raises(ValueError, match="positive predictive value"):
        med.ppv(y, p, threshold=1.1)  # no one called positive
    with pytest.raises(ValueError, match="sensitivity"):
        med.sensitivity(np.zeros(5, int), np.linspace(0, 1, 5), 0.5)
    assert math.isclose(med.npv(y, p, 1.1), 1 - y.mean())
