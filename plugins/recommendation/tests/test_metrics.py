"""Top-K metrics by full ranking, checked by hand and against torchmetrics' retrieval metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automl_recommendation.metrics import MASKED, METRICS, coverage, mrr, ranking_metrics, target_ranks


def _by_name(name):
    return next(m for m in METRICS if m.name == name)


def test_a_hand_computed_case():
    # user 0: held-out item 2 is beaten only by item 4 (item 1 is seen, masked) -> rank 1
    # user 1: held-out item 0 is beaten by items 1, 2, 3 -> rank 3
    scores = np.array([[0.1, MASKED, 0.5, 0.3, 0.9],
                       [0.2, 0.8, 0.7, 0.6, MASKED]], dtype=np.float32)
    y = np.array([2, 0])
    assert target_ranks(y, scores).tolist() == [1, 3]
    assert _by_name("hr@5").fn(y, scores) == 1.0
    assert _by_name("hr@10").fn(y, scores) == 1.0
    assert _by_name("ndcg@5").fn(y, scores) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / 2)
    assert mrr(y, scores) == pytest.approx((1 / 2 + 1 / 4) / 2)
    m = ranking_metrics(y, scores, k=2)
    assert m["hr@2"] == 0.5 and m["recall@2"] == 0.5 and m["ndcg@2"] == pytest.approx(1 / math.log2(3) / 2)
    # top-2: {4, 2} and {1, 2} -> items 1, 2, 4 of 5
    assert m["coverage@2"] == pytest.approx(3 / 5)


def test_ties_count_against_the_model():
    scores = np.zeros((3, 50), dtype=np.float32)  # a constant model ranks every held-out item last
    y = np.array([0, 10, 49])
    assert _by_name("hr@10").fn(y, scores) == 0.0 and _by_name("ndcg@10").fn(y, scores) == 0.0


@pytest.mark.parametrize("k", [5, 10, 20])
def test_agrees_with_torchmetrics_retrieval_metrics(k):
    import torch
    from torchmetrics.retrieval import RetrievalHitRate, RetrievalMRR, RetrievalNormalizedDCG, RetrievalRecall

    rng = np.random.default_rng(k)
    n_users, n_items = 200, 300
    # positive scores: torchmetrics' MRR counts a relevant item only where its score is above 0
    scores = rng.uniform(0.01, 1.0, size=(n_users, n_items)).astype(np.float32)
    y = rng.integers(0, n_items, n_users)
    seen = rng.random((n_users, n_items)) < 0.2
    seen[np.arange(n_users), y] = False
    # make the model good for some users, so hits happen at every rank
    scores[np.arange(n_users), y] += rng.uniform(0, 0.5, n_users).astype(np.float32)
    masked = np.where(seen, np.float32(MASKED), scores)

    # torchmetrics ranks candidates only: every item the user has not seen
    users, items = np.nonzero(~seen)
    preds = torch.from_numpy(scores[users, items])
    target = torch.from_numpy(items == y[users])
    indexes = torch.from_numpy(users)
    expected = {
        f"hr@{k}": RetrievalHitRate(top_k=k)(preds, target, indexes=indexes),
        f"ndcg@{k}": RetrievalNormalizedDCG(top_k=k)(preds, target, indexes=indexes),
        f"recall@{k}": RetrievalRecall(top_k=k)(preds, target, indexes=indexes),
        "mrr": RetrievalMRR()(preds, target, indexes=indexes),
    }
    for name, value in expected.items():
        assert _by_name(name).fn(y, masked) == pytest.approx(float(value), abs=1e-6), name


def test_coverage_counts_distinct_items_in_every_top_k():
    scores = np.tile(np.arange(100, dtype=np.float32), (4, 1))  # everyone gets the same top 10
    assert coverage(scores, 10) == pytest.approx(0.1)
    scores[1] = scores[1][::-1]  # one user gets the other end of the catalogue
    assert coverage(scores, 10) == pytest.approx(0.2)
