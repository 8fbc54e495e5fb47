"""The gains table: ten equal bands, riskiest first, with cumulative capture and KS that add up."""

from __future__ import annotations

import numpy as np
import pytest

from automl_finance_risk.gains import gains_table
from automl_finance_risk.metrics import ks


def test_gains_table_on_informative_scores():
    rng = np.random.default_rng(2)
    y = (rng.random(891) < 0.28).astype(int)
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=891))))
    table = gains_table(y, p)
    assert list(table["decile"]) == list(range(1, 11))
    assert table["count"].sum() == 891 and table["count"].max() - table["count"].min() <= 1
    assert table["bads"].sum() == y.sum()
    assert (table["min_score"].iloc[:-1].to_numpy() >= table["max_score"].iloc[1:].to_numpy()).all()
    assert table["bad_rate"].iloc[0] > 2 * y.mean() > table["bad_rate"].iloc[-1]
    assert table["cum_bad_share"].is_monotonic_increasing and table["cum_bad_share"].iloc[-1] == pytest.approx(1)
    assert table["ks"].iloc[-1] == pytest.approx(0)
    # the decile KS is the continuous KS read at ten points only
    assert 0.8 * ks(y, p) < table["ks"].max() <= ks(y, p) + 1e-12


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 10 rows"):
        gains_table(np.array([0, 1, 1]), np.array([0.1, 0.5, 0.9]))
