"""The recommendation sections of `report.html` (the `automl_report_sections` hook): ranking quality by
cut-off K, and what gets recommended.

From the evaluated users the report re-derives (`run.test`: each user's held-out item and a score for every
item, earlier items masked, exactly as the evaluation ranked them): NDCG@K and HR@K for K from 1 to 50, the
catalogue coverage of the top K, and the popularity of the recommended items against the catalogue's.
plotly is imported inside the functions: `automl plugins` imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.api import ReportSection

from automl_recommendation.datasets import DOMAIN
from automl_recommendation.options import IMPLICIT

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl.api import RunView

#: Cut-offs drawn (1 to this); popularity bands of the catalogue.
MAX_K, BANDS = 50, 10


def sections(run: "RunView") -> list[Any]:
    if run.domain != DOMAIN or run.task != IMPLICIT:
        return []
    if run.test is None:
        return [lambda: ReportSection("Ranking quality by K", key="ranking-by-k",
                                      note=f"The evaluated users cannot be re-derived ({run.why_not('test')}): "
                                           "metrics.json holds the figures at the configured K.")]
    return [lambda: ranking_by_k(run), lambda: coverage_by_k(run), lambda: popularity(run)]


def _k(run: "RunView") -> int:
    return int((run.meta.notes.get("k") if run.meta is not None else None) or 10)


def ranking_by_k(run: "RunView") -> ReportSection:
    import numpy as np
    import plotly.graph_objects as go

    from automl_recommendation.metrics import hr_from_ranks, ndcg_from_ranks, target_ranks

    test = run.test
    ranks = target_ranks(test.y, test.scores)
    ks = np.arange(1, min(MAX_K, test.scores.shape[1]) + 1)
    ndcg = [ndcg_from_ranks(ranks, int(k)) for k in ks]
    hr = [hr_from_ranks(ranks, int(k)) for k in ks]
    figure = go.Figure([go.Scatter(x=ks, y=ndcg, mode="lines+markers", name="NDCG@K"),
                        go.Scatter(x=ks, y=hr, mode="lines+markers", name="HR@K (= recall@K)")])
    k = _k(run)
    ci = run.metrics.ci95.get(f"ndcg@{k}") if run.metrics is not None else None
    if k <= ks[-1]:
        figure.add_vline(x=k, line_dash="dash", line_color="grey", annotation_text=f"K = {k} (metrics.json)")
        if ci:
            figure.add_trace(go.Scatter(x=[k], y=[ndcg[k - 1]], mode="markers", marker={"color": "black"},
                                        name=f"NDCG@{k}, 95% interval {ci[0]:.4f} to {ci[1]:.4f}",
                                        error_y={"type": "data", "symmetric": False, "array": [ci[1] - ndcg[k - 1]],
                                                 "arrayminus": [ndcg[k - 1] - ci[0]]}))
    figure.update_layout(xaxis_title="K (length of the recommendation list)", yaxis_title="test value",
                         legend={"orientation": "h", "y": 1.12})
    return ReportSection(
        "NDCG@K and HR@K by K", key="ranking-by-k", figures=(figure,),
        note=f"{len(ranks):,} evaluated users, each user's last interaction held out and ranked against every item "
             f"the user had not interacted with ({test.scores.shape[1]:,} items). {test.check}".strip())


def _top(run: "RunView", k: int) -> "np.ndarray":
    from automl_recommendation.metrics import top_k

    return top_k(run.test.scores, k)


def coverage_by_k(run: "RunView") -> ReportSection:
    import numpy as np
    import plotly.graph_objects as go

    n_items = run.test.scores.shape[1]
    top = _top(run, min(MAX_K, n_items))
    ks = np.arange(1, top.shape[1] + 1)
    coverage = [len(np.unique(top[:, :k])) / n_items for k in ks]
    figure = go.Figure(go.Scatter(x=ks, y=coverage, mode="lines+markers", name="coverage@K"))
    figure.update_layout(xaxis_title="K", yaxis_title="share of the catalogue recommended", yaxis_tickformat=".1%")
    return ReportSection("Catalogue coverage by K", figures=(figure,),
                         note="Share of all items that appear in at least one evaluated user's top K: a model that "
                              "recommends the same few items to everyone covers little.")


def popularity(run: "RunView") -> ReportSection:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go

    test = run.test
    prepared = test.prepared
    n_items = test.scores.shape[1]
    # popularity as the model saw it: interactions per item in the training rows
    counts = np.bincount(prepared.arrays["item"][prepared.train], minlength=n_items)
    order = np.argsort(-counts, kind="stable")
    band = np.empty(n_items, dtype=int)
    band[order] = np.arange(n_items) * BANDS // n_items  # 0: the most popular tenth of the catalogue
    k = _k(run)
    top = _top(run, min(k, n_items))
    recommended = np.bincount(band[top.ravel()], minlength=BANDS) / top.size
    held_out = np.bincount(band[np.asarray(test.y, dtype=int)], minlength=BANDS) / len(test.y)
    labels = [f"{10 * b}-{10 * (b + 1)}%" for b in range(BANDS)]
    figure = go.Figure([go.Bar(x=labels, y=recommended, name=f"recommended (top {k})"),
                        go.Bar(x=labels, y=held_out, name="held-out items (what users did next)"),
                        go.Bar(x=labels, y=np.full(BANDS, 1 / BANDS), name="catalogue", marker_color="lightgrey")])
    figure.update_layout(barmode="group", xaxis_title="popularity band of the catalogue (0-10%: the most popular "
                         "items, by training interactions)", yaxis_title="share", yaxis_tickformat=".0%")
    table = pd.DataFrame({
        "items": [f"recommended (top {k})", "held out", "catalogue"],
        "mean training interactions": [counts[top.ravel()].mean(), counts[np.asarray(test.y, dtype=int)].mean(),
                                       counts.mean()],
        "share in the most popular tenth": [recommended[0], held_out[0], 1 / BANDS],
        "distinct items": [len(np.unique(top)), len(np.unique(test.y)), n_items],
    })
    return ReportSection("Popularity of the recommended items", figures=(figure,), tables=(table,),
                         note="Where the recommended items sit in the catalogue's popularity, beside the items users "
                              "actually chose next: a list concentrated on the most popular tenth is a popularity "
                              "recommender in disguise.")
