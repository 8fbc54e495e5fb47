"""Responsible search: fairness for any domain, constraints a model must meet, several objectives and their
Pareto front, direct identifiers refused, decisions judged by their 95% bounds."""

from __future__ import annotations

import json
import logging
import subprocess

import numpy as np
import pandas as pd
import pytest

from automl import AutoML
from automl.errors import AutoMLError, ConfigError, DataError

TINY = ["search.n_workers=0", "trainer.max_epochs=3", "search.families=[mlp]"]


@pytest.fixture
def credit(credit_frame) -> pd.DataFrame:
    return credit_frame.drop(columns=["rownames"])


def test_fairness_is_reported_for_the_generic_domain_with_intervals(credit, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        result = AutoML(overrides=[*TINY, "search.n_trials=2", "data.sensitive=Marital"]).fit(
            data=credit, target="Status", run_dir=tmp_path)
    report = json.loads((tmp_path / "metrics.json").read_text())["fairness"]["Marital"]
    for key in ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference"):
        assert 0.0 <= report[key] <= 1.0
        low, high = report["ci95"][key]
        assert low <= report[key] <= high and low < high
    assert {"married", "single"} <= set(report["compared_groups"])
    assert {"selection_rate", "tpr", "fpr", "mean_probability", "base_rate"} <= set(report["groups"]["married"])
    assert any("'Marital' is not a feature" in r.message for r in caplog.records)
    preprocessing = json.loads((tmp_path / "predictor" / "preprocessing.json").read_text())
    assert "Marital" not in preprocessing["categorical"] + preprocessing["numeric"]
    assert result.outcome.final.report.fairness["Marital"]["threshold"] == pytest.approx(0.5)


def test_a_sensitivity_constraint_sets_the_operating_point_by_its_lower_bound(tmp_path):
    result = AutoML(domain="medical", overrides=[*TINY, "search.n_trials=3", "search.constraints=[sensitivity>=0.95]"]
                    ).fit(dataset="breast_biopsy", run_dir=tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    judged = metrics["constraints"]
    assert judged["feasible"] and judged["values"]["sensitivity_lower_bound"] >= 0.95
    assert metrics["details"]["operating_point"]["validation_lower_bound"] >= 0.95
    board = result.leaderboard
    assert "feasible" in board and "measured.sensitivity_lower_bound" in board
    complete = board[board.state == "complete"]
    assert complete.feasible.notna().all()


def test_infeasible_trials_are_marked_and_never_chosen(credit, tmp_path):
    with pytest.raises(AutoMLError, match=r"no trial met search.constraints") as err:
        AutoML(overrides=[*TINY, "search.n_trials=2", "search.constraints=[roc_auc>=0.999]"]).fit(
            data=credit, target="Status", run_dir=tmp_path)
    assert "\n" not in str(err.value) and "roc_auc" in str(err.value)
    board = pd.read_csv(tmp_path / "leaderboard.csv") if (tmp_path / "leaderboard.csv").exists() else None
    del board  # the run stops before its files: nothing infeasible is saved as a model
    assert not (tmp_path / "predictor" / "predictor.json").exists()


def test_two_objectives_make_a_pareto_front(credit, tmp_path):
    result = AutoML(overrides=["search.n_workers=0", "trainer.max_epochs=2", "search.n_trials=5",
                               "search.objectives=[roc_auc,latency_ms]"]).fit(
        data=credit, target="Status", run_dir=tmp_path)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert {"value_roc_auc", "value_latency_ms", "pareto"} <= set(board.columns)
    front = board[board.pareto]
    assert len(front) >= 1 and (front.state == "complete").all()
    complete = board[board.state == "complete"]
    for _, row in complete[~complete.pareto].iterrows():  # every trial off the front is dominated by one on it
        assert ((front.value_roc_auc >= row.value_roc_auc) & (front.value_latency_ms <= row.value_latency_ms)).any()
    picked = result.outcome.final.number
    assert picked in set(front.number)
    assert picked == int(front.sort_values(["value_roc_auc", "number"], ascending=[False, True]).number.iloc[0])
    assert json.loads((tmp_path / "metrics.json").read_text())["constraints"]["pareto_front"] == sorted(front.number)


@pytest.mark.parametrize("constraint, words", [
    ("sensitivity>>0.9", "is not METRIC>=BOUND"), ("sharpness>=0.9", "unknown metric 'sharpness'"),
    ("dp_difference<=0.05", "set data.sensitive"),
])
def test_bad_constraints_are_one_line(credit, tmp_path, constraint, words):
    with pytest.raises(ConfigError, match=words):
        AutoML(overrides=[*TINY, "search.n_trials=1", f"search.constraints=[{constraint}]"]).fit(
            data=credit, target="Status", run_dir=tmp_path)


def test_a_csv_with_an_email_column_is_refused_before_training(automl_cli, credit, tmp_path):
    rows = credit.head(200).copy()
    rows["contact"] = [f"customer{i}@example.com" for i in range(len(rows))]
    path = tmp_path / "with_email.csv"
    rows.to_csv(path, index=False)
    proc = subprocess.run([automl_cli, f"data.path={path}", "data.target=Status", "search.n_trials=1",
                           f"run_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("automl: error: ")
    assert "'contact' (e-mail addresses)" in proc.stderr and "data.id_columns=[contact]" in proc.stderr
    assert not (tmp_path / "run" / "study.journal").exists()
    # marked as an identifier, it is dropped and never written
    AutoML(overrides=[*TINY, "search.n_trials=1", "data.id_columns=[contact]"]).fit(
        data=rows, target="Status", run_dir=tmp_path / "ok")
    assert not [p for p in (tmp_path / "ok").rglob("*") if p.is_file() and b"@example.com" in p.read_bytes()]


def test_direct_identifier_patterns():
    from automl.data.identifiers import identifier_kind

    assert identifier_kind(pd.Series(["+44 20 7946 0958", "(555) 123-4567"] * 10)) == "phone numbers"
    assert identifier_kind(pd.Series(["4111 1111 1111 1111", "5500-0000-0000-0004"] * 5)) == "payment card numbers"
    assert identifier_kind(pd.Series(["10.0.0.1", "2001:db8::1"] * 5)) == "IP addresses"
    assert identifier_kind(pd.Series(["123-45-6789"] * 5)) == "national ID numbers"
    for harmless in (["2024-01-31", "2023-12-01"], ["1234.5678", "-1234567"], ["rent", "owner"],
                     ["4111 1111 1111 1112"]):  # dates, numbers as text, categories, a card number failing Luhn
        assert identifier_kind(pd.Series(harmless * 10)) is None
    with pytest.raises(DataError):
        from automl.data.identifiers import refuse_direct_identifiers

        refuse_direct_identifiers(pd.DataFrame({"ip": ["10.0.0.1"] * 5}), "table 't'")


def test_a_rate_is_judged_by_its_bound_which_matches_a_stratified_bootstrap():
    from automl.decision import rates

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.35 * y + 0.65 * rng.random(400), 0, 1)
    t = 0.3
    r = rates(y, p, np.array([t]))
    pos = np.flatnonzero(y == 1)
    boot = [np.mean(p[rng.choice(pos, len(pos))] >= t) for _ in range(4000)]
    assert r.lower["sensitivity"][0] == pytest.approx(np.quantile(boot, 0.025), abs=0.01)
    assert r.upper["sensitivity"][0] == pytest.approx(np.quantile(boot, 0.975), abs=0.01)
