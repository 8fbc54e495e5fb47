"""The cut-off meets its target on the rows it was chosen on; the confusion matrix counts what it says."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from automl.api import ConfigError
from automl_finance_risk.decision import choose_cutoff, decision_report
from automl_finance_risk.options import DEFAULT_APPROVAL_RATE, FinanceRiskOptions


@pytest.fixture
def scored():
    rng = np.random.default_rng(1)
    y = (rng.random(1000) < 0.25).astype(int)
    p = np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(scale=0.15, size=1000), 0.001, 0.999)
    return y, p


def test_approval_rate_target_approves_that_share_lowest_risk_first(scored):
    y, p = scored
    cut = choose_cutoff(y, p, FinanceRiskOptions(target_approval_rate=0.7))
    approved = p < cut.threshold
    assert approved.mean() == pytest.approx(0.7, abs=1e-3)
    assert p[approved].max() < p[~approved].min()
    assert (cut.target, cut.target_value, cut.target_met) == ("approval_rate", 0.7, True)


def test_default_target_is_the_default_approval_rate(scored):
    y, p = scored
    cut = choose_cutoff(y, p, FinanceRiskOptions())
    assert cut.target_value == DEFAULT_APPROVAL_RATE
    assert (p < cut.threshold).mean() == pytest.approx(DEFAULT_APPROVAL_RATE, abs=1e-3)


def test_max_bad_rate_approves_as_many_as_the_cap_allows(scored):
    y, p = scored
    cap = 0.10
    cut = choose_cutoff(y, p, FinanceRiskOptions(max_bad_rate=cap))
    approved = p < cut.threshold
    assert cut.target == "max_bad_rate" and cut.target_met
    assert y[approved].mean() <= cap
    # approving the next applicant in line (or any larger prefix) would break the cap
    order = np.argsort(p)
    k = int(approved.sum())
    assert all(y[order[:j]].mean() > cap for j in range(k + 1, len(p) + 1))
    assert 0.2 < approved.mean() < 0.95


def test_unreachable_cap_approves_nobody_and_says_so(scored):
    y = np.array([1, 0, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.9])
    cut = choose_cutoff(y, p, FinanceRiskOptions(max_bad_rate=0.2))
    assert not cut.target_met
    assert not (p < cut.threshold).any()


def test_ties_never_split_across_the_cut_off():
    y = np.array([0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.2, 0.2, 0.8, 0.9])
    cut = choose_cutoff(y, p, FinanceRiskOptions(max_bad_rate=0.3))
    # approving the first 0.2 alone would keep 0% bad, but the three tied 0.2s go together (50% bad)
    assert (p < cut.threshold).sum() == 1


def test_decision_report_counts_match_sklearn(scored):
    y, p = scored
    t = 0.35
    report = decision_report(y, p, t)
    (tn, fp), (fn, tp) = confusion_matrix(y, (p >= t).astype(int))
    cm = report["confusion_matrix"]
    assert (cm["actual_bad"]["declined"], cm["actual_bad"]["approved"]) == (tp, fn)
    assert (cm["actual_good"]["declined"], cm["actual_good"]["approved"]) == (fp, tn)
    assert report["approval_rate"] == pytest.approx((p < t).mean())
    assert report["bad_rate_approved"] == pytest.approx(y[p < t].mean())
    assert report["bads_declined_share"] == pytest.approx(tp / (tp + fn))


@pytest.mark.parametrize("options, message", [
    ({"calibration": "sigmoid"}, "calibration='sigmoid' is not valid"),
    ({"target_approval_rate": 0.7, "max_bad_rate": 0.1}, "both set"),
    ({"max_bad_rate": 1.5}, "max_bad_rate=1.5 must be a fraction"),
    ({"target_approval_rate": 0.0}, "target_approval_rate=0.0 must be a fraction"),
    ({"min_group_size": 0}, "min_group_size=0 must be at least 1"),
])
def test_bad_options_are_one_clear_line(options, message):
    with pytest.raises(ConfigError, match=message):
        FinanceRiskOptions(**options)
