"""Top-K metrics by full ranking: the held-out item against every item the user has not interacted with.

`fn(y_true, y_score)`: `y_true` holds the held-out item of each evaluated user, `y_score` a score for every
item (one row per user) in which the user's earlier items are already masked with `MASKED`. The rank of
the held-out item is the number of items scored at least as high, so ties count against the model (a
constant model ranks every item last, it never gets lucky). With one held-out item per user, Recall@K
equals HR@K; MRR is over the full ranking, not cut at K.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from automl.api import MAXIMIZE, MetricSpec

from automl_recommendation.options import IMPLICIT

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: Score of an item a user has already seen: the lowest finite float32, so it ranks below every real score
#: while the host's check for diverged (non-finite) predictions still means what it says.
MASKED = -3.4028234663852886e38

#: Cut-offs registered as metrics (`search.metric=ndcg@20` works); `domain.options.k` adds any other.
REGISTERED_KS = (5, 10, 20)


def target_ranks(y_true: "np.ndarray", y_score: "np.ndarray") -> "np.ndarray":
    """0-based rank of each row's held-out item among all items (ties ranked ahead of it)."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=np.int64)
    target = y_score[np.arange(len(y_true)), y_true]
    return (y_score >= target[:, None]).sum(axis=1) - 1


def hr_from_ranks(ranks: "np.ndarray", k: int) -> float:
    return float((ranks < k).mean())


def ndcg_from_ranks(ranks: "np.ndarray", k: int) -> float:
    import numpy as np

    return float(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


def mrr_from_ranks(ranks: "np.ndarray") -> float:
    return float((1.0 / (ranks + 1.0)).mean())


def top_k(y_score: "np.ndarray", k: int) -> "np.ndarray":
    """Indices of the k best items per row, best first."""
    import numpy as np

    k = min(k, y_score.shape[1])
    part = np.argpartition(-y_score, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(y_score, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def coverage(y_score: "np.ndarray", k: int) -> float:
    """Catalogue coverage: share of all items that appear in at least one user's top k."""
    import numpy as np

    return float(len(np.unique(top_k(y_score, k))) / y_score.shape[1])


def hit_rate_at(k: int) -> Callable[["np.ndarray", "np.ndarray"], float]:
    def fn(y_true: "np.ndarray", y_score: "np.ndarray") -> float:
        return hr_from_ranks(target_ranks(y_true, y_score), k)

    return fn


def ndcg_at(k: int) -> Callable[["np.ndarray", "np.ndarray"], float]:
    def fn(y_true: "np.ndarray", y_score: "np.ndarray") -> float:
        return ndcg_from_ranks(target_ranks(y_true, y_score), k)

    return fn


def coverage_at(k: int) -> Callable[["np.ndarray", "np.ndarray"], float]:
    def fn(y_true: "np.ndarray", y_score: "np.ndarray") -> float:
        return coverage(y_score, k)

    return fn


def mrr(y_true: "np.ndarray", y_score: "np.ndarray") -> float:
    return mrr_from_ranks(target_ranks(y_true, y_score))


def ranking_metrics(y_true: "np.ndarray", y_score: "np.ndarray", k: int) -> dict[str, float]:
    """Every top-K metric at cut-off k, from one ranking pass."""
    ranks = target_ranks(y_true, y_score)
    hr = hr_from_ranks(ranks, k)
    return {f"hr@{k}": hr, f"ndcg@{k}": ndcg_from_ranks(ranks, k), f"recall@{k}": hr, "mrr": mrr_from_ranks(ranks),
            f"coverage@{k}": coverage(y_score, k)}


def _specs() -> list[MetricSpec]:
    full = "full ranking over every item the user has not interacted with"
    specs = []
    for k in REGISTERED_KS:
        specs += [
            MetricSpec(f"ndcg@{k}", MAXIMIZE, {IMPLICIT}, ndcg_at(k),
                       f"normalised discounted cumulative gain of the held-out item in the top {k}; {full}"),
            MetricSpec(f"hr@{k}", MAXIMIZE, {IMPLICIT}, hit_rate_at(k),
                       f"hit rate: share of users whose held-out item is in their top {k}; {full}"),
            MetricSpec(f"recall@{k}", MAXIMIZE, {IMPLICIT}, hit_rate_at(k),
                       f"recall of the held-out items in the top {k} (one per user: equals hr@{k}); {full}"),
        ]
    specs.append(MetricSpec("mrr", MAXIMIZE, {IMPLICIT}, mrr, f"mean reciprocal rank of the held-out item; {full}"))
    specs.append(MetricSpec("coverage@10", MAXIMIZE, {IMPLICIT}, coverage_at(10),
                            "catalogue coverage: share of all items in at least one evaluated user's top 10"))
    return specs


METRICS = _specs()
