"""Global feature importance of the final model on the test rows, on the ORIGINAL columns, by two methods:

- permutation importance (scikit-learn's `permutation_importance`): how much the test loss grows when one
  column's values are shuffled among the test rows, through the saved predictor end to end (preprocessing,
  network, calibration);
- integrated gradients (Sundararajan et al. 2017; `automl.tabular.explain`, captum): the mean absolute
  contribution of each column to the score, on a sample of test rows.

Both need the raw test rows (`RunView.test.rows`): tabular runs whose data can be re-derived.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.report.section import ReportSection
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl.report.run_view import RunView

PERMUTATION_REPEATS, PERMUTATION_MAX_ROWS, PERMUTATION_MIN_ROWS, PROBE_ROWS = 5, 2000, 50, 64
#: Integrated gradients on at most this many test rows (a seeded sample), to this completeness gap.
IG_ROWS, IG_FIRST_ROWS, IG_TOLERANCE = 100, 8, 1e-3
#: Beyond this many networks in the final model (an ensemble of fold models), the report leaves them out.
IG_MAX_NETWORKS = 5
#: Seconds each method may take: `automl report` must stay quick whatever the model costs (an ensemble of
#: twenty networks scores rows twenty times slower); the rows used are fewer then, and the note says how many.
BUDGET_S = 0.75
SEED = 0


def sections(run: "RunView") -> list[Any]:
    if run.task not in (BINARY, MULTICLASS, REGRESSION):
        return []  # explanations by column are for tables; a domain of its own shape explains itself
    test = run.test
    if test is None or test.rows is None:
        why = run.why_not("test") or "the raw test rows could not be matched with the scored ones"
        return [lambda: ReportSection("Feature importance", key="feature-importance",
                                      note=f"Left out: {why}.")]
    return [lambda: permutation(run), lambda: integrated_gradients(run)]


class _Fitted:
    """scikit-learn's `permutation_importance` takes an estimator; the saved predictor is already fitted."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def fit(self, rows: Any, y: Any = None) -> "_Fitted":
        return self


def permutation(run: "RunView") -> ReportSection:
    import time

    import numpy as np
    from sklearn.inspection import permutation_importance

    test, predictor = run.test, run.predictor
    loss_name, loss = _loss(predictor)
    order = np.random.default_rng(SEED).permutation(len(test.rows))[:PERMUTATION_MAX_ROWS]
    rows, y = test.rows.iloc[order], np.asarray(test.y)[order]
    # What one pass costs decides the rows and shuffles used: an ensemble of 25 networks scores a row in ~1 ms
    started = time.perf_counter()
    loss(y[:PROBE_ROWS], rows.iloc[:PROBE_ROWS])
    per_row = (time.perf_counter() - started) / min(PROBE_ROWS, len(rows))
    repeats = PERMUTATION_REPEATS
    for repeats in range(PERMUTATION_REPEATS, 0, -1):  # fewer shuffles before fewer rows
        if per_row * len(rows) * (len(rows.columns) * repeats + 1) <= BUDGET_S:
            break
    affordable = int(BUDGET_S / max(per_row * (len(rows.columns) * repeats + 1), 1e-12))
    if affordable < len(rows):
        keep = max(PERMUTATION_MIN_ROWS, affordable)
        rows, y = rows.iloc[:keep], y[:keep]
    result = permutation_importance(_Fitted(predictor), rows, y, scoring=lambda est, X, t: -loss(t, X),
                                    n_repeats=repeats, random_state=SEED)
    figure = _bars(list(rows.columns), result.importances_mean, result.importances_std,
                   f"increase of the test {loss_name} when shuffled")
    sample = f"{len(rows):,} test rows" + (f" (a seeded sample of the {len(test.rows):,})" if len(rows) < len(test.rows)
                                           else "")
    return ReportSection(
        "Feature importance: permutation", key="feature-importance",
        note=f"Method: permutation importance (scikit-learn): the increase of the {loss_name} of the saved predictor "
             f"on {sample} when one original column's values are shuffled among them, mean and standard deviation "
             f"over {repeats} shuffle{'s' if repeats > 1 else ''}. Near zero or below: the model does not rely on "
             "the column (or a correlated column stands in for it).",
        figures=(figure,))


def integrated_gradients(run: "RunView") -> ReportSection:
    import time

    import numpy as np
    import pandas as pd

    rows = run.test.rows
    order = np.random.default_rng(SEED).permutation(len(rows))[:IG_ROWS]
    from automl.tabular.explain import ExplainTimeout

    if _networks(run) > IG_MAX_NETWORKS:
        return ReportSection(
            "Feature importance: integrated gradients", key="feature-importance-ig",
            note=f"Left out: this model averages {_size(run)}, and integrated gradients through each of them take "
                 "longer than a report may spend. Per row: automl.load(run_dir).explain(rows), or automl predict "
                 "RUN_DIR FILE --explain.")
    started = time.perf_counter()
    try:
        parts = [run.predictor.explain(rows.iloc[order[:IG_FIRST_ROWS]], tolerance=IG_TOLERANCE,
                                       time_limit=BUDGET_S)]
    except ExplainTimeout:
        return ReportSection(
            "Feature importance: integrated gradients", key="feature-importance-ig",
            note=f"Left out: integrated gradients take more than {BUDGET_S:g} s for {IG_FIRST_ROWS} rows of this "
                 f"model ({_size(run)}), more than a report may spend. Per row, without a time limit: "
                 "automl.load(run_dir).explain(rows), or automl predict RUN_DIR FILE --explain.")
    spent = time.perf_counter() - started
    more = int(IG_FIRST_ROWS * (BUDGET_S - spent) / max(spent, 1e-9))
    if more > 0 and len(order) > IG_FIRST_ROWS:
        parts.append(run.predictor.explain(rows.iloc[order[IG_FIRST_ROWS:IG_FIRST_ROWS + more]],
                                           tolerance=IG_TOLERANCE))
    contributions = pd.concat([p.contributions for p in parts])
    delta = pd.concat([p.delta for p in parts])
    explanation = parts[0]
    figure = _bars(list(contributions.columns), contributions.abs().mean().to_numpy(), None,
                   "mean |contribution| to the score")
    return ReportSection(
        "Feature importance: integrated gradients", key="feature-importance-ig",
        note=f"Method: {explanation.method}. Explained: {explanation.explained}, relative to a baseline with "
             f"{explanation.baseline}. Mean absolute contribution of each original column over {len(contributions):,} "
             f"test rows (a seeded sample); each row's contributions add up to its score minus the baseline's "
             f"(largest gap {float(delta.abs().max()):.1e}). Per row: automl.load(run_dir).explain(rows), or "
             "automl predict RUN_DIR FILE --explain.",
        figures=(figure,))


def _networks(run: "RunView") -> int:
    meta = run.meta
    return sum(max(1, m.folds) for m in meta.members) if meta is not None else 1


def _size(run: "RunView") -> str:
    networks = _networks(run)
    return f"{networks} network{'s' if networks > 1 else ''}"


def _loss(predictor: Any) -> tuple[str, Any]:
    """The test loss permutation importance watches, as `loss(y, rows)` through the saved predictor."""
    import numpy as np
    from sklearn.metrics import log_loss

    if predictor.task == REGRESSION:
        return "RMSE", lambda y, rows: float(np.sqrt(np.mean((_scores(predictor, rows) - y) ** 2)))
    if predictor.task == BINARY:
        return "log loss", lambda y, rows: float(log_loss(y, _scores(predictor, rows), labels=[0, 1]))
    return "log loss", lambda y, rows: float(log_loss(y, _scores(predictor, rows),
                                                      labels=list(range(len(predictor.classes)))))


def _scores(predictor: Any, rows: Any) -> "np.ndarray":
    """What `predict_proba` (P(positive) for binary) or `predict` (regression) return, without its checks of
    the input rows: these are the test rows, checked already, scored again once per shuffle."""
    import torch

    from automl.tabular.calibration import apply_calibration
    from automl.tabular.objective import outputs_to_scores

    x_num, x_cat = predictor.preprocessor.transform(rows)
    with torch.inference_mode():
        out = outputs_to_scores(predictor.model(torch.from_numpy(x_num), torch.from_numpy(x_cat)).float(),
                                predictor.task).numpy()
    if predictor.task == REGRESSION:
        return out * predictor.meta.data["y_std"] + predictor.meta.data["y_mean"]
    if predictor.task == BINARY and predictor.meta.calibration:
        return apply_calibration(out, predictor.meta.calibration)
    return out


def _bars(names: list[str], values: "np.ndarray", errors: "np.ndarray | None", axis: str) -> Any:
    import numpy as np
    import plotly.graph_objects as go

    order = np.argsort(values)  # largest at the top of a horizontal bar chart
    bar = go.Bar(x=np.asarray(values)[order], y=[names[i] for i in order], orientation="h",
                 error_x={"type": "data", "array": np.asarray(errors)[order]} if errors is not None else None,
                 marker_color="#1f5fa8")
    figure = go.Figure(bar)
    figure.update_layout(xaxis_title=axis, height=max(260, 90 + 24 * len(names)))
    return figure

