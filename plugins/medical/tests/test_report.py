"""The medical sections of report.html: the ROC curve with the operating point and its intervals, sensitivity
and specificity against the threshold, the metrics with their intervals; the evaluation's pictures when the
test rows cannot be re-derived."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from automl.api import Evaluation, ReportSection, TestRows
from automl_medical import plugin
from automl_medical.evaluate import evaluate
from automl_medical.options import MedicalOptions


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def evaluated(run_dir, diagnostic_predictions):
    """The domain's own evaluation of real predictions, written into `run_dir` as into a run directory."""
    from automl.testing import plugin_host

    host = plugin_host(plugin, "medical")
    d, domain = diagnostic_predictions, host.domain("medical")
    ev = Evaluation(run_dir=run_dir, domain=domain, options=MedicalOptions(bootstrap=200), task="binary",
                    y_val=d["y_val"].copy(), p_val=d["p_val"].copy(), y_test=d["y_test"].copy(),
                    p_test=d["p_test"].copy(), metric_specs=[host.metrics.get(n) for n in domain.metrics["binary"]],
                    classes=["benign", "malignant"], positive_class="malignant")
    ev.recompute()
    evaluate(ev)
    return ev


def _run(ev: Evaluation, run_dir, derived: bool) -> SimpleNamespace:
    test = TestRows(y=ev.y_test, scores=ev.p_test, prepared=None, threshold=ev.threshold) if derived else None
    return SimpleNamespace(
        domain="medical", task="binary", test=test, path=lambda name: run_dir / name,
        metrics=SimpleNamespace(test=dict(ev.metrics), ci95=dict(ev.ci95), details=dict(ev.details)),
        meta=SimpleNamespace(data={"classes": ["benign", "malignant"]}),
        why_not=lambda name: "the data was a DataFrame passed to the SDK")


def _build(run) -> dict[str, ReportSection]:
    sections = [item() for item in plugin.automl_report_sections(run)]
    assert all(isinstance(s, ReportSection) for s in sections)
    return {s.title: s for s in sections}


def test_roc_shows_the_operating_point_with_its_intervals(evaluated, run_dir):
    sections = _build(_run(evaluated, run_dir, derived=True))
    assert list(sections) == ["ROC curve with the operating point", "Sensitivity and specificity against the "
                              "threshold", "Test metrics with 95% intervals"]
    point = sections["ROC curve with the operating point"].figures[0].data[-1]
    sens, spec = evaluated.metrics["sensitivity"], evaluated.metrics["specificity"]
    assert (point.x[0], point.y[0]) == pytest.approx((1 - spec, sens))
    low, high = evaluated.ci95["sensitivity"]
    assert (point.error_y.arrayminus[0], point.error_y.array[0]) == pytest.approx((sens - low, high - sens))
    low, high = evaluated.ci95["specificity"]
    assert (point.error_x.arrayminus[0], point.error_x.array[0]) == pytest.approx((high - spec, spec - low))


def test_rates_against_the_threshold_match_the_chosen_point(evaluated, run_dir):
    figure = _build(_run(evaluated, run_dir, derived=True))["Sensitivity and specificity against the "
                                                             "threshold"].figures[0]
    thresholds, sensitivity = np.asarray(figure.data[0].x), np.asarray(figure.data[0].y)
    at = np.flatnonzero(thresholds >= evaluated.threshold)[-1]  # the lowest threshold at or above the chosen one
    assert sensitivity[at] == pytest.approx(evaluated.metrics["sensitivity"])


def test_intervals_table_holds_every_metric_with_one(evaluated, run_dir):
    table = _build(_run(evaluated, run_dir, derived=True))["Test metrics with 95% intervals"].tables[0]
    assert set(table["metric"]) == {k for k, v in evaluated.ci95.items() if not np.isnan(v).any()}
    assert ((table["95% low"] <= table["test"]) & (table["test"] <= table["95% high"])).all()


def test_without_the_test_rows_the_evaluations_pictures_are_shown(evaluated, run_dir):
    sections = _build(_run(evaluated, run_dir, derived=False))
    pictures = sections["ROC and calibration (the evaluation's pictures)"]
    assert {p.name for p in pictures.images} == {"roc_curve.png", "calibration_curve.png"}
    assert "DataFrame passed to the SDK" in pictures.note
