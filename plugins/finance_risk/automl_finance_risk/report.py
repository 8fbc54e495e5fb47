"""The finance_risk sections of `report.html` (the `automl_report_sections` hook): what a model-validation team
reads. ROC with the cut-off's operating point, the KS curve, the gains table with lift and its chart, and the
decision and fairness at the cut-off.

Curves are drawn from the test rows the report re-derives (`run.test`: calibrated P(bad) as the evaluation
scored them); when those cannot be re-derived, the sections fall back to what the evaluation wrote into the
run directory (gains_table.csv, ks_curve.png, roc_curve.png) and metrics.json. plotly is imported inside the
functions: `automl plugins` imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.api import BINARY, ReportSection

from automl_finance_risk.evaluate import GAINS_TABLE, KS_CURVE, ROC_CURVE

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from automl.api import RunView

NAME = "finance_risk"


def sections(run: "RunView") -> list[Any]:
    if run.domain != NAME or run.task != BINARY:
        return []
    return [lambda: roc(run), lambda: ks(run), lambda: gains(run), lambda: decision(run), lambda: fairness(run)]


def _scored(run: "RunView") -> "tuple[np.ndarray, np.ndarray] | None":
    test = run.test
    return (test.y.astype(int), test.scores) if test is not None else None


def _fallback_note(run: "RunView", what: str) -> str:
    return f"The test rows cannot be re-derived ({run.why_not('test')}), so this is the {what} the evaluation wrote."


def roc(run: "RunView") -> ReportSection:
    import plotly.graph_objects as go
    from sklearn.metrics import roc_auc_score, roc_curve

    title = "ROC curve"
    scored = _scored(run)
    if scored is None:
        images = [run.path(ROC_CURVE)] if run.path(ROC_CURVE).exists() else []
        return ReportSection(title, note=_fallback_note(run, "picture"), images=images)
    y, p = scored
    fpr, tpr, _ = roc_curve(y, p)
    auc = float(roc_auc_score(y, p))
    ci = run.metrics.ci95.get("roc_auc") if run.metrics is not None else None
    label = f"model: AUC {auc:.3f}, Gini {2 * auc - 1:.3f}"
    if ci:
        label += f" (AUC 95% CI {ci[0]:.3f} to {ci[1]:.3f})"
    figure = go.Figure([go.Scatter(x=fpr, y=tpr, mode="lines", name=label, line={"color": "#c0392b"}),
                        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="random", line={"dash": "dot",
                                                                                          "color": "grey"})])
    threshold = run.test.threshold
    if threshold is not None:
        declined = p >= threshold
        point = (float(declined[y == 0].mean()), float(declined[y == 1].mean()))
        figure.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", marker={"size": 11, "color": "black"},
                                    name=f"cut-off {threshold:.3f}: {1 - declined.mean():.0%} approved"))
    figure.update_layout(xaxis_title="false positive rate (goods declined)",
                         yaxis_title="true positive rate (bads declined)", legend={"x": 0.35, "y": 0.05},
                         xaxis={"range": [0, 1]}, yaxis={"range": [0, 1.02]})
    return ReportSection(title, figures=(figure,), note=f"Calibrated P(bad) on the {len(y):,} test rows; the dot is "
                         "the accept / decline cut-off chosen on validation rows.")


def ks(run: "RunView") -> ReportSection:
    import numpy as np
    import plotly.graph_objects as go

    title = "KS curve"
    scored = _scored(run)
    if scored is None:
        images = [run.path(KS_CURVE)] if run.path(KS_CURVE).exists() else []
        return ReportSection(title, note=_fallback_note(run, "picture"), images=images)
    y, p = scored
    order = np.argsort(-p, kind="stable")
    bads = np.r_[0, np.cumsum(y[order])] / max(int(y.sum()), 1)
    goods = np.r_[0, np.cumsum(1 - y[order])] / max(int(len(y) - y.sum()), 1)
    share = np.arange(len(y) + 1) / len(y)
    at = int(np.argmax(bads - goods))
    figure = go.Figure([
        go.Scatter(x=share, y=bads, mode="lines", name="bads declined (cumulative share)", line={"color": "#c0392b"}),
        go.Scatter(x=share, y=goods, mode="lines", name="goods declined (cumulative share)",
                   line={"color": "#1f5fa8"}),
        go.Scatter(x=[share[at], share[at]], y=[goods[at], bads[at]], mode="lines+markers",
                   line={"dash": "dash", "color": "black"},
                   name=f"KS = {bads[at] - goods[at]:.3f} at {share[at]:.0%} declined"),
    ])
    figure.update_layout(xaxis_title="share of applicants declined, riskiest first", yaxis_title="cumulative share",
                         xaxis={"range": [0, 1], "tickformat": ".0%"}, yaxis={"range": [0, 1.02]},
                         legend={"x": 0.45, "y": 0.08})
    return ReportSection(title, figures=(figure,),
                         note="The largest gap between the cumulative shares of bads and goods declined, applicants "
                              "ranked by calibrated P(bad), riskiest first (test rows).")


def gains(run: "RunView") -> ReportSection:
    import pandas as pd

    from automl_finance_risk.gains import gains_table

    title = "Gains and lift"
    scored = _scored(run)
    note = "Test applicants in ten bands of equal size by calibrated P(bad), riskiest first: bad rate and lift " \
           "(the band's bad rate over the overall bad rate) per band, cumulative share of bads captured."
    if scored is not None:
        table = gains_table(*scored)
    elif run.path(GAINS_TABLE).exists():
        table, note = pd.read_csv(run.path(GAINS_TABLE)), note + " " + _fallback_note(run, "table")
    else:
        return ReportSection(title, note=f"No gains table: {run.why_not('test')}.")
    table = with_lift(table)
    return ReportSection(title, note=note, figures=(gains_chart(table),), tables=(table,))


def with_lift(table: "pd.DataFrame") -> "pd.DataFrame":
    """The gains table with lift per band and cumulative lift (bad rate over the overall bad rate)."""
    out = table.copy()
    overall = out["bads"].sum() / max(out["count"].sum(), 1)
    out["lift"] = out["bad_rate"] / overall if overall else float("nan")
    cum_rate = out["bads"].cumsum() / out["count"].cumsum()
    out["cum_lift"] = cum_rate / overall if overall else float("nan")
    return out


def gains_chart(table: "pd.DataFrame") -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Bar(x=table["decile"], y=table["lift"], name="lift of the band", marker_color="#c0392b",
                            opacity=0.75), secondary_y=False)
    figure.add_trace(go.Scatter(x=table["decile"], y=table["cum_bad_share"], mode="lines+markers",
                                name="cumulative share of bads captured", line={"color": "#1f5fa8"}), secondary_y=True)
    figure.add_trace(go.Scatter(x=table["decile"], y=table["count"].cumsum() / table["count"].sum(), mode="lines",
                                name="random (share of applicants)", line={"dash": "dot", "color": "grey"}),
                     secondary_y=True)
    figure.update_xaxes(title_text="band (1 = riskiest tenth)", dtick=1)
    figure.update_yaxes(title_text="lift", secondary_y=False)
    figure.update_yaxes(title_text="cumulative share of bads", range=[0, 1.02], tickformat=".0%", secondary_y=True)
    figure.update_layout(legend={"x": 0.45, "y": 0.5})
    return figure


def decision(run: "RunView") -> ReportSection:
    import pandas as pd

    title = "Cut-off"
    details = run.metrics.details.get("decision") if run.metrics is not None else None
    if not details:
        return ReportSection(title, note="metrics.json holds no decision (the evaluation did not choose a cut-off).")
    target = details.get("target")
    rows = []
    for split in ("validation", "test"):
        d = details.get(split) or {}
        rows.append({"rows": split, "applicants": d.get("n"), "approval rate": d.get("approval_rate"),
                     "bad rate approved": d.get("bad_rate_approved"), "bad rate declined": d.get("bad_rate_declined"),
                     "share of bads declined": d.get("bads_declined_share"),
                     "share of goods declined": d.get("goods_declined_share")})
    tables = [pd.DataFrame(rows)]
    matrix = (details.get("test") or {}).get("confusion_matrix")
    if matrix:
        tables.append(pd.DataFrame(matrix).T.rename_axis("test rows"))
    met = "" if details.get("target_met", True) else " The target could not be met on validation: nobody is approved."
    return ReportSection(
        title, tables=tuple(tables),
        note=f"Rule: {details.get('rule', 'decline when P(bad) >= threshold')}, threshold {details['threshold']:.4f}, "
             f"chosen on validation rows for the target {target} = {details.get('target_value')}.{met}")


def fairness(run: "RunView") -> ReportSection:
    import pandas as pd
    import plotly.express as px

    title = "Fairness at the cut-off"
    reports = run.metrics.details.get("fairness") if run.metrics is not None else None
    if not reports:
        return ReportSection(title, note="No sensitive attribute was reported on (data.sensitive names one).")
    summary, rows = [], []
    for attribute, report in reports.items():
        summary.append({"attribute": attribute,
                        "demographic parity difference": report.get("demographic_parity_difference"),
                        "adverse impact ratio": report.get("adverse_impact_ratio"),
                        "equal opportunity difference": report.get("equal_opportunity_difference"),
                        "groups compared": ", ".join(map(str, report.get("compared_groups", [])))})
        for group, values in report.get("groups", {}).items():
            rows.append({"attribute": attribute, "group": str(group), **values,
                         "compared": group in report.get("compared_groups", [])})
    groups = pd.DataFrame(rows)
    figure = px.bar(groups, x="group", y="approval_rate", color="compared", facet_col="attribute",
                    hover_data=["n", "bad_rate", "approval_rate_goods", "decline_rate_bads"],
                    labels={"approval_rate": "approval rate", "compared": "in the comparison"})
    figure.update_yaxes(range=[0, 1], tickformat=".0%")
    return ReportSection(
        title, figures=(figure,), tables=(pd.DataFrame(summary), groups),
        note="Test rows by sensitive attribute, at the cut-off: approval rates, and rates among goods and bads. "
             f"Groups smaller than {next(iter(reports.values())).get('min_group_size', '?')} rows are shown but not "
             "compared. The attribute is reported on, not learned from.")
