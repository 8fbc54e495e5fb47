"""The recommendation sections of report.html: NDCG@K and HR@K by K, catalogue coverage by K and the popularity
of what is recommended, on movielens evaluated as a run evaluates it (here by a popularity ranker)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from automl.api import ReportSection, TestRows
from automl_recommendation import plugin
from automl_recommendation.metrics import MASKED, coverage, ranking_metrics
from automl_recommendation.sampling import seen_before


@pytest.fixture(scope="module")
def popularity_run(prepared):
    """Each evaluated user's held-out item, and popularity scores with the user's earlier items masked."""
    import torch

    p = prepared.prepared
    item, offsets, user = (p.arrays[k] for k in ("item", "offsets", "user"))
    counts = np.bincount(item[p.train], minlength=p.info.n_items).astype(np.float32)
    rows = p.test
    scores = np.tile(counts + np.random.default_rng(0).random(len(counts)).astype(np.float32) * 1e-3,
                     (len(rows), 1))
    which, seen = seen_before(torch.as_tensor(item), torch.as_tensor(offsets[user[rows]]), torch.as_tensor(rows))
    scores[which.numpy(), seen.numpy()] = MASKED
    test = TestRows(y=item[rows], scores=scores, prepared=p)
    return SimpleNamespace(domain="recommendation", task="implicit", test=test,
                           metrics=SimpleNamespace(ci95={"ndcg@10": [0.01, 0.03]}),
                           meta=SimpleNamespace(notes={"k": 10}), why_not=lambda name: "")


def _build(run) -> dict[str, ReportSection]:
    sections = [item() for item in plugin.automl_report_sections(run)]
    assert all(isinstance(s, ReportSection) for s in sections)
    return {s.title: s for s in sections}


def test_ranking_by_k_agrees_with_the_domains_metrics(popularity_run):
    sections = _build(popularity_run)
    assert list(sections) == ["NDCG@K and HR@K by K", "Catalogue coverage by K", "Popularity of the recommended items"]
    ndcg, hr = sections["NDCG@K and HR@K by K"].figures[0].data[:2]
    assert list(ndcg.x) == list(range(1, 51))
    expected = ranking_metrics(popularity_run.test.y, popularity_run.test.scores, 10)
    assert ndcg.y[9] == pytest.approx(expected["ndcg@10"]) and hr.y[9] == pytest.approx(expected["hr@10"])
    assert all(np.diff(hr.y) >= 0)  # a longer list never finds fewer held-out items
    coverage_at = sections["Catalogue coverage by K"].figures[0].data[0]
    assert coverage_at.y[9] == pytest.approx(coverage(popularity_run.test.scores, 10))


def test_a_popularity_ranker_recommends_from_the_most_popular_tenth(popularity_run):
    table = _build(popularity_run)["Popularity of the recommended items"].tables[0]
    recommended, catalogue = table.iloc[0], table.iloc[2]
    assert recommended["share in the most popular tenth"] == pytest.approx(1.0)
    assert recommended["mean training interactions"] > 10 * catalogue["mean training interactions"]


def test_other_tasks_and_domains_get_no_recommendation_sections(popularity_run):
    explicit = SimpleNamespace(**{**vars(popularity_run), "task": "regression"})
    other = SimpleNamespace(**{**vars(popularity_run), "domain": "finance_risk"})
    assert plugin.automl_report_sections(explicit) == [] and plugin.automl_report_sections(other) == []
