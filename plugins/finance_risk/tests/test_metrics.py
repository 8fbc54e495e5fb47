"""Gini and KS agree with their textbook definitions, computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from automl_finance_risk.metrics import gini, ks


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.3
    p = 1 / (1 + np.exp(-(1.5 * y + rng.normal(size=2000))))  # informative, imperfect scores
    return y.astype(int), p


def test_gini_is_twice_auc_minus_one(scored):
    y, p = scored
    assert gini(y, p) == pytest.approx(2 * roc_auc_score(y, p) - 1)
    assert gini(y, 1 - p) == pytest.approx(-gini(y, p))


def test_ks_is_the_two_sample_statistic_of_bads_against_goods(scored):
    y, p = scored
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert ks(y, p) == pytest.approx(expected)
    assert 0.3 < ks(y, p) < 0.8


def test_perfect_and_useless_rankings():
    y = np.array([0, 0, 0, 1, 1])
    assert ks(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == pytest.approx(1.0)
    assert gini(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == pytest.approx(1.0)
    assert ks(y, np.full(5, 0.5)) == pytest.approx(0.0)
