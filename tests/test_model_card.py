"""The model card (`automl.card`): what a committee reads, from the run's own files. A hand-made run directory in
the shapes run.json, metrics.json and predictor.json have, so no search is needed (tests/test_export.py checks
that a real run writes its card)."""

from __future__ import annotations

import hashlib
import json

import pytest

from automl.card import CARD_JSON, CARD_MD, predictor_digest, write_model_card


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "predictor" / "transformer").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "domain": "tabular", "started": "2026-11-30T10:00:00+0000", "wall_s": 12.5, "format": 1,
        "data": {"source": "credit.csv", "rows": 4454, "task": "binary", "target": "Status",
                 "features": {"numeric": ["Income", "Age"], "categorical": ["Home"]},
                 "classes": {"good": 3200, "bad": 1254}, "positive_class": "bad",
                 "dropped": {"Marital": "sensitive attribute: reported on, not learned", "Status": "the target"},
                 "dropped_rows": 2, "sensitive": ["Marital"],
                 "split": {"train": 2850, "validation": 713, "test": 891},
                 "validation": "one validation split of 713 rows", "extra": {}},
        "search": {"objective": "roc_auc", "families": ["mlp", "dcn"], "trials_in_study": 12, "sampler": "tpe",
                   "pruner": "median", "seed": 0},
        "versions": {"vertical-automl": "0.1.0", "torch": "2.13.0", "onnxruntime": None},
    }))
    (run / "metrics.json").write_text(json.dumps({
        "test": {"roc_auc": 0.84, "brier": 0.14}, "validation": {"roc_auc": 0.83, "brier": 0.15},
        "ci95": {"roc_auc": [0.81, 0.87]}, "n_test": 891, "validation_rows": "validation split (713 rows)",
        "model": {"family": "mlp", "best_trial": 7, "objective": "roc_auc",
                  "members": [{"trial": 7, "family": "mlp", "weight": 0.75, "folds": 0},
                              {"trial": 3, "family": "dcn", "weight": 0.25, "folds": 5}]},
        "details": {"decision": {"threshold": 0.42, "rule": "decline when calibrated P(bad) >= threshold",
                                 "target": "approval_rate", "target_value": 0.8},
                    "fairness": {"Marital": {"adverse_impact_ratio": 0.91,
                                             "groups": {"married": {"n": 644, "approval_rate": 0.79},
                                                        "single": {"n": 197, "approval_rate": 0.76}}}}},
        "format": 2,
    }))
    (run / "predictor" / "predictor.json").write_text(json.dumps({
        "pipeline": "tabular", "domain": "tabular", "task": "binary", "objective": "roc_auc", "threshold": 0.42,
        "calibration": {"method": "platt", "coef": 1.0, "intercept": 0.0}, "validation_value": 0.83,
        "notes": {"decision": {"threshold": 0.42}}, "format": 3,
        "members": [{"trial": 7, "family": "mlp", "params": {"widths": [64]}, "weight": 0.75, "folds": 0},
                    {"trial": 3, "family": "dcn", "params": {"n_cross": 2}, "weight": 0.25, "folds": 5}],
    }))
    (run / "predictor" / "model.safetensors").write_bytes(b"weights")
    (run / "predictor" / "transformer" / "config.json").write_text("{}")
    return run


def test_card_names_data_model_metrics_threshold_fairness_versions_and_weights(run_dir, host):
    path = write_model_card(run_dir, host)
    text = path.read_text()
    assert path.name == CARD_MD and text.startswith("# Model card: Status (tabular domain, credit.csv)")
    # intended use, in the domain's words
    assert host.domain("tabular").intended_use in text
    # data: source, rows, features, target, positive class, what was left out and why
    for words in ("credit.csv; 4454 rows used (2 dropped", "target `Status`; positive class `bad`", "`Income`",
                  "| `Marital` | sensitive attribute", "train 2850, validation 713, test 891",
                  "one validation split of 713 rows"):
        assert words in text, words
    # the model and its members, the metrics with intervals
    assert "Family: mlp (trial 7)" in text and "Calibration: platt" in text and "| 3 | dcn | 0.25 | 5 |" in text
    assert "| roc_auc | 0.84 | 0.81 to 0.87 | 0.83 |" in text
    # threshold and how it was chosen; fairness per group
    assert "P(`bad`) >= 0.42" in text and "approval_rate" in text and "decline when calibrated" in text
    assert "### `Marital`" in text and "| married | 0.79 | 644 |" in text
    # versions and a SHA-256 per weights file (the transformer folder's files too)
    assert "| torch | 2.13.0 |" in text
    digest = hashlib.sha256(b"weights").hexdigest()
    assert f"| `predictor/model.safetensors` | `{digest}` |" in text
    assert "`predictor/transformer/config.json`" in text


def test_card_json_holds_the_same_facts(run_dir, host):
    write_model_card(run_dir, host)
    card = json.loads((run_dir / CARD_JSON).read_text())
    assert card["data"]["target"] == "Status" and card["model"]["family"] == "mlp"
    assert card["test"]["ci95"]["roc_auc"] == [0.81, 0.87] and card["decision"]["threshold"] == 0.42
    assert set(card["weights"]) == {"model.safetensors", "transformer/config.json"}


def test_a_run_without_run_json_still_gets_a_card(run_dir, host):
    (run_dir / "run.json").unlink()
    text = write_model_card(run_dir, host).read_text()
    assert "Not recorded (this run wrote no run.json)" in text and "Family: mlp" in text


def test_predictor_digest_changes_with_the_weights(run_dir):
    before = predictor_digest(run_dir / "predictor")
    (run_dir / "predictor" / "model.safetensors").write_bytes(b"other weights")
    assert predictor_digest(run_dir / "predictor") != before
