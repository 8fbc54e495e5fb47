"""The domain's final evaluation: top-K metrics at the configured cut-off, coverage, an interval on NDCG."""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl_recommendation.options import IMPLICIT

if TYPE_CHECKING:  # pragma: no cover
    from automl.api import Evaluation


def evaluate(ev: "Evaluation") -> None:
    """Add hr/ndcg/recall/coverage at `domain.options.k` and a 95% bootstrap interval of test NDCG@k."""
    if ev.task != IMPLICIT or not ev.has_test:
        return
    from automl.api import bootstrap_ci

    from automl_recommendation.metrics import ndcg_from_ranks, ranking_metrics, target_ranks

    k = int(getattr(ev.options, "k", 10))
    ev.metrics.update(ranking_metrics(ev.y_test, ev.p_test, k))
    ranks = target_ranks(ev.y_test, ev.p_test)
    # users are resampled, not items: the interval says how much the score depends on who was evaluated
    lo, hi = bootstrap_ci(lambda r, _: ndcg_from_ranks(r, k), ranks, ranks, stratified=False)
    ev.ci95[f"ndcg@{k}"] = [round(lo, 5), round(hi, 5)]
    ev.details["n_items_ranked"] = int(ev.p_test.shape[1])
    ev.details["ranking"] = "full: every item the user has not interacted with"
    ev.notes["k"] = k
