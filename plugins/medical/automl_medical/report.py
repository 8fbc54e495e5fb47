"""The medical sections of `report.html` (the `automl_report_sections` hook): what a clinical paper shows.

Binary: the ROC curve with the operating point chosen on validation and its 95% bootstrap intervals
(sensitivity and specificity, from metrics.json), sensitivity and specificity against the threshold, and the
test metrics with their intervals. Multiclass: one-vs-rest ROC curves and per-class rates. Curves come from
the test rows the report re-derives (`run.test`); without them, the pictures the evaluation wrote are shown.
plotly is imported inside the functions: `automl plugins` imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.api import BINARY, MULTICLASS, ReportSection

from automl_medical.plots import CALIBRATION_PNG, ROC_PNG

if TYPE_CHECKING:  # pragma: no cover
    from automl.api import RunView

NAME = "medical"


def sections(run: "RunView") -> list[Any]:
    if run.domain != NAME or run.task not in (BINARY, MULTICLASS):
        return []
    if run.test is None:
        return [lambda: pictures(run), lambda: intervals(run)]
    if run.task == BINARY:
        return [lambda: roc(run), lambda: rates_by_threshold(run), lambda: intervals(run)]
    return [lambda: roc_one_vs_rest(run), lambda: intervals(run)]


def roc(run: "RunView") -> ReportSection:
    import plotly.graph_objects as go
    from sklearn.metrics import roc_auc_score, roc_curve

    test, report = run.test, run.metrics
    y, p = test.y.astype(int), test.scores
    fpr, tpr, _ = roc_curve(y, p)
    auc = float(roc_auc_score(y, p))
    ci = report.ci95 if report is not None else {}
    label = f"test: AUC {auc:.3f}" + (f" (95% CI {ci['roc_auc'][0]:.3f} to {ci['roc_auc'][1]:.3f})"
                                      if ci.get("roc_auc") else "")
    figure = go.Figure([go.Scatter(x=fpr, y=tpr, mode="lines", name=label),
                        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                   line={"dash": "dot", "color": "grey"})])
    sens, spec = report.test.get("sensitivity"), report.test.get("specificity")
    point = report.details.get("operating_point", {})
    if sens is not None and spec is not None:
        error_x = _error(1 - spec, [1 - v for v in reversed(ci.get("specificity", []))])
        error_y = _error(sens, ci.get("sensitivity", []))
        figure.add_trace(go.Scatter(
            x=[1 - spec], y=[sens], mode="markers", marker={"size": 11, "color": "black"}, error_x=error_x,
            error_y=error_y, name=f"operating point ({point.get('rule', 'chosen on validation')}, threshold "
                                  f"{point.get('threshold', float('nan')):.3f}): sensitivity {sens:.3f}, specificity "
                                  f"{spec:.3f}"))
    figure.update_layout(xaxis_title="1 - specificity", yaxis_title="sensitivity", xaxis={"range": [0, 1]},
                         yaxis={"range": [0, 1.02]}, legend={"x": 0.25, "y": 0.05})
    return ReportSection(
        "ROC curve with the operating point",
        note=f"Test rows ({len(y):,}, prevalence {y.mean():.1%}). The operating point was chosen on validation rows "
             f"({point.get('description', point.get('rule', ''))}); its bars are the 95% bootstrap intervals of "
             "sensitivity and specificity on the test rows.",
        figures=(figure,))


def _error(value: float, interval: list[float]) -> dict[str, Any] | None:
    """Asymmetric error bars for plotly from a [low, high] interval around `value`."""
    if len(interval) != 2 or None in interval:
        return None
    return {"type": "data", "symmetric": False, "array": [max(0.0, interval[1] - value)],
            "arrayminus": [max(0.0, value - interval[0])]}


def rates_by_threshold(run: "RunView") -> ReportSection:
    import numpy as np
    import plotly.graph_objects as go
    from sklearn.metrics import roc_curve

    test = run.test
    y, p = test.y.astype(int), test.scores
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    keep = np.isfinite(thresholds) & (thresholds <= 1.0)
    t, sens, spec = thresholds[keep], tpr[keep], 1 - fpr[keep]
    figure = go.Figure([go.Scatter(x=t, y=sens, mode="lines", name="sensitivity", line={"shape": "hv"}),
                        go.Scatter(x=t, y=spec, mode="lines", name="specificity", line={"shape": "hv"})])
    if test.threshold is not None:
        figure.add_vline(x=test.threshold, line_dash="dash", line_color="black",
                         annotation_text=f"chosen threshold {test.threshold:.3f}", annotation_position="top")
    figure.update_layout(xaxis_title="threshold on P(positive)", yaxis_title="rate on the test rows",
                         xaxis={"range": [0, 1]}, yaxis={"range": [0, 1.02]}, legend={"x": 0.02, "y": 0.1})
    return ReportSection("Sensitivity and specificity against the threshold",
                         note="What moving the threshold would trade on the test rows (positive: P at or above it). "
                              "The chosen one was fixed on validation rows, never here.", figures=(figure,))


def roc_one_vs_rest(run: "RunView") -> ReportSection:
    import plotly.graph_objects as go
    from sklearn.metrics import roc_auc_score, roc_curve

    test, meta = run.test, run.meta
    labels = [str(c) for c in (meta.data.get("classes") or [])] if meta is not None else []
    y = test.y.astype(int)
    figure = go.Figure()
    for k in range(test.scores.shape[1]):
        positive = (y == k).astype(int)
        if 0 < positive.sum() < len(y):
            fpr, tpr, _ = roc_curve(positive, test.scores[:, k])
            name = labels[k] if k < len(labels) else str(k)
            figure.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines",
                                        name=f"{name} (AUC {roc_auc_score(positive, test.scores[:, k]):.3f})"))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}))
    figure.update_layout(xaxis_title="1 - specificity", yaxis_title="sensitivity")
    return ReportSection("ROC curves, one class against the rest", figures=(figure,),
                         note=f"Test rows ({len(y):,}); the decision is the most probable class.")


def intervals(run: "RunView") -> ReportSection:
    import pandas as pd
    import plotly.graph_objects as go

    report = run.metrics
    title = "Test metrics with 95% intervals"
    if report is None:
        return ReportSection(title, note=f"metrics.json cannot be read: {run.why_not('metrics')}")
    rows = [(name, value, report.ci95[name]) for name, value in report.test.items()
            if value is not None and name in report.ci95 and None not in report.ci95[name]]
    if not rows:
        return ReportSection(title, note="metrics.json holds no intervals.")
    names = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    figure = go.Figure(go.Scatter(
        x=values, y=names, mode="markers", marker={"size": 9, "color": "black"},
        error_x={"type": "data", "symmetric": False, "array": [r[2][1] - r[1] for r in rows][::-1],
                 "arrayminus": [r[1] - r[2][0] for r in rows][::-1]}))
    figure.update_layout(xaxis_title="test value (95% interval)", height=max(280, 80 + 28 * len(rows)))
    table = pd.DataFrame({"metric": [r[0] for r in rows], "test": [r[1] for r in rows],
                          "95% low": [r[2][0] for r in rows], "95% high": [r[2][1] for r in rows]})
    return ReportSection(title, note=report.details.get("ci95_method", "bootstrap over the test rows"),
                         figures=(figure,), tables=(table,))


def pictures(run: "RunView") -> ReportSection:
    images = [run.path(name) for name in (ROC_PNG, CALIBRATION_PNG) if run.path(name).exists()]
    return ReportSection("ROC and calibration (the evaluation's pictures)", images=tuple(images),
                         note=f"The test rows cannot be re-derived ({run.why_not('test')}), so these are the "
                              "pictures the evaluation wrote.")
