"""The final model: learning curves of the best trials (their intermediate values, from the study), and on
the re-derived test rows the calibration curve and the confusion matrix at the decision threshold (the
regression counterpart: predictions against the truth)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from automl.report.section import ReportSection
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    from automl.report.run_view import RunView

#: Learning curves of this many best completed trials.
BEST_TRIALS = 5
CALIBRATION_BINS = 10


def sections(run: "RunView") -> list[Any]:
    out: list[Any] = [lambda: learning_curves(run)]
    task = run.task
    if task not in (BINARY, MULTICLASS, REGRESSION):
        return out  # a pipeline of its own: its domain's sections show its test results
    if run.test is None:
        out.append(lambda: ReportSection(
            "Test rows", key="test-rows",
            note=f"Calibration and confusion matrix are left out: {run.why_not('test')}."))
        return out
    if task == BINARY:
        out += [lambda: calibration(run), lambda: confusion(run)]
    elif task == MULTICLASS:
        out.append(lambda: confusion(run))
    else:
        out.append(lambda: predicted_vs_actual(run))
    return out


def learning_curves(run: "RunView") -> ReportSection:
    import optuna
    from optuna.trial import TrialState

    from automl.records import TrialRecord

    title = "Learning curves of the best trials"
    study = run.study
    if study is None:
        return ReportSection(title, note=f"The study cannot be loaded: {run.why_not('study')}.")
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.intermediate_values]
    if not done:
        return ReportSection(title, note="No completed trial reported intermediate values.")
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = sorted(done, key=lambda t: t.value, reverse=maximize)[:BEST_TRIALS]
    folds = any(TrialRecord.of(t).cv_scores for t in best)
    shown = optuna.create_study(direction=study.direction)  # in memory: only the trials to draw
    shown.add_trials(best)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure = optuna.visualization.plot_intermediate_values(shown)
    objective = study.user_attrs.get("metric", "objective")
    figure.update_layout(title_text="", xaxis_title="fold" if folds else "epoch", yaxis_title=objective,
                         xaxis={"dtick": 1})
    step = ("the running mean of the folds' " + objective + " after each fold (cross-validated trials)") if folds \
        else f"validation {objective} after each epoch"
    return ReportSection(title, note=f"The {len(best)} best completed trials: {step}, as each trial reported it "
                                     "to Optuna (early stopping keeps the best epoch's weights).", figures=(figure,))


def calibration(run: "RunView") -> ReportSection:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    from sklearn.calibration import calibration_curve

    test = run.test
    y, p = test.y.astype(int), test.scores
    observed, predicted = calibration_curve(y, p, n_bins=CALIBRATION_BINS, strategy="quantile")
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05)
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                line={"dash": "dot", "color": "grey"}), row=1, col=1)
    figure.add_trace(go.Scatter(x=predicted, y=observed, mode="lines+markers", name="model"), row=1, col=1)
    figure.add_trace(go.Histogram(x=p, xbins={"start": 0, "end": 1, "size": 0.05}, name="test rows",
                                  marker_color="grey", showlegend=False), row=2, col=1)
    figure.update_xaxes(range=[0, 1], row=1, col=1)
    figure.update_xaxes(title_text=f"predicted {_positive(run)}", range=[0, 1], row=2, col=1)
    figure.update_yaxes(title_text="observed rate", range=[-0.02, 1.02], row=1, col=1)
    figure.update_yaxes(title_text="rows", row=2, col=1)
    figure.update_layout(height=520, legend={"x": 0.02, "y": 0.98})
    calibrated = run.meta.calibration["method"] if run.meta is not None and run.meta.calibration else None
    return ReportSection(
        "Calibration on the test rows",
        note=f"Observed rate of {_positive(run)} against the predicted probability, in {CALIBRATION_BINS} bins of "
             f"equal size over the {len(y):,} test rows"
             + (f" (probabilities after the saved {calibrated} calibration)." if calibrated else ".")
             + f" {test.check}".rstrip(),
        figures=(figure,))


def confusion(run: "RunView") -> ReportSection:
    import numpy as np
    import plotly.express as px
    from sklearn.metrics import confusion_matrix

    test, meta = run.test, run.meta
    classes = [str(c) for c in (meta.data.get("classes") or [])] if meta is not None else []
    if run.task == BINARY:
        threshold = test.threshold if test.threshold is not None else 0.5
        predicted = (test.scores >= threshold).astype(int)
        positive = str(meta.data.get("positive_class")) if meta is not None else "1"
        negative = next((c for c in classes if c != positive), "0")
        labels, rule = [negative, positive], f"{_positive(run)} at or above the decision threshold {threshold:.4f}"
    else:
        predicted = np.asarray(test.scores).argmax(axis=1)
        labels, rule = classes or [str(i) for i in range(np.asarray(test.scores).shape[1])], "the most probable class"
    matrix = confusion_matrix(test.y.astype(int), predicted, labels=list(range(len(labels))))
    figure = px.imshow(matrix, x=labels, y=labels, text_auto=True, color_continuous_scale="Blues",
                       labels={"x": "predicted", "y": "actual", "color": "rows"}, aspect="auto")
    figure.update_layout(height=min(600, 220 + 60 * len(labels)), coloraxis_showscale=False)
    figure.update_traces(hovertemplate="actual %{y}<br>predicted %{x}<br>%{z} rows<extra></extra>")
    title = "Confusion matrix at the decision threshold" if run.task == BINARY else "Confusion matrix"
    return ReportSection(title, note=f"Test rows by actual and predicted class; predicted: {rule}.",
                         figures=(figure,))


def predicted_vs_actual(run: "RunView") -> ReportSection:
    import numpy as np
    import plotly.graph_objects as go

    test = run.test
    y, p = np.asarray(test.y, dtype=float), np.asarray(test.scores, dtype=float)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    figure = go.Figure([go.Scatter(x=y, y=p, mode="markers", name="test rows", marker={"size": 5, "opacity": 0.6}),
                        go.Scatter(x=[low, high], y=[low, high], mode="lines", name="perfect",
                                   line={"dash": "dot", "color": "grey"})])
    target = run.meta.data.get("target") if run.meta is not None else "target"
    figure.update_layout(xaxis_title=f"actual {target}", yaxis_title=f"predicted {target}")
    return ReportSection("Predictions against the truth", note=f"The {len(y):,} test rows. {test.check}".strip(),
                         figures=(figure,))


def _positive(run: "RunView") -> str:
    meta = run.meta
    if meta is None:
        return "P(positive)"
    return f"P({meta.data.get('target')} = {meta.data.get('positive_class')})"
