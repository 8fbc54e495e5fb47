"""Fairness at the cut-off: per-group rates and the gaps between groups, on a table checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from automl_finance_risk.fairness import fairness_report, group_labels


def test_rates_and_differences_by_hand():
    # group a: 4 goods (1 declined), 1 bad (declined); group b: 2 goods (both approved), 2 bads (1 declined)
    groups = np.array(["a"] * 5 + ["b"] * 4 + ["c"])
    y = np.array([0, 0, 0, 0, 1, 0, 0, 1, 1, 0])
    declined = np.array([1, 0, 0, 0, 1, 0, 0, 1, 0, 1], dtype=bool)
    report = fairness_report(y, declined, groups, min_group_size=2)
    a, b = report["groups"]["a"], report["groups"]["b"]
    assert (a["approval_rate"], b["approval_rate"]) == (pytest.approx(3 / 5), pytest.approx(3 / 4))
    assert (a["approval_rate_goods"], b["approval_rate_goods"]) == (pytest.approx(3 / 4), 1.0)
    assert report["compared_groups"] == ["a", "b"]  # c has one row: listed, not compared
    assert report["groups"]["c"]["n"] == 1
    assert report["demographic_parity_difference"] == pytest.approx(3 / 4 - 3 / 5)
    assert report["adverse_impact_ratio"] == pytest.approx((3 / 5) / (3 / 4))
    assert report["equal_opportunity_difference"] == pytest.approx(1 - 3 / 4)


def test_a_single_comparable_group_gives_no_difference():
    report = fairness_report(np.array([0, 1, 0]), np.array([False, True, False]), np.array(["x", "x", "y"]), 2)
    assert np.isnan(report["demographic_parity_difference"])


def test_numeric_attribute_is_banded_on_validation_quartiles():
    val = np.arange(20, 60, dtype=float)  # quartiles 29.75, 39.5, 49.25
    test = np.array([18.0, 30.0, 45.0, 70.0, np.nan, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0])
    labels = group_labels(test, val)
    assert labels[0] == "< 29.75" and labels[1] == "[29.75, 39.5)" and labels[2] == "[39.5, 49.25)"
    assert labels[3] == ">= 49.25" and labels[4] == "missing"


def test_categorical_attribute_keeps_its_values():
    labels = group_labels(np.array(["married", None, "single"], dtype=object), np.array(["married"]))
    assert list(labels) == ["married", "missing", "single"]
