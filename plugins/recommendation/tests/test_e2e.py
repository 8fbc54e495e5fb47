"""End to end on movielens: the real command, the SDK, the saved recommender."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import automl
from automl import AutoML

pytestmark = pytest.mark.e2e


def _popularity_ndcg(prepared) -> float:
    """NDCG@10 of recommending the most interacted-with training items, on the same split and masking."""
    from automl_recommendation.metrics import MASKED, ndcg_at

    p = prepared.prepared
    a = p.arrays
    counts = np.bincount(a["item"][p.train], minlength=p.info.n_items).astype(np.float32)
    scores = np.tile(counts, (len(p.test), 1))
    for n, r in enumerate(p.test):
        scores[n, a["item"][a["offsets"][a["user"][r]]:r]] = MASKED
    return ndcg_at(10)(a["item"][p.test], scores)


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mf")
    overrides = ["search.n_trials=2", "trainer.max_epochs=4", "search.n_workers=0", "search.families=[mf_bpr]",
                 "domain.options.k=20"]
    return AutoML(domain="recommendation", overrides=overrides).fit(dataset="movielens", run_dir=run_dir)


def test_sdk_search_reports_full_ranking_metrics_and_beats_popularity(mf_run, prepared):
    report = json.loads((mf_run.run_dir / "metrics.json").read_text())
    metrics = report["test"]
    # one held-out item per user: recall is the hit rate; a longer list hits more and covers more items;
    # a hit's gain is at most 1, so NDCG never exceeds the hit rate
    assert metrics["recall@10"] == metrics["hr@10"] <= metrics["hr@20"]
    assert metrics["coverage@10"] <= metrics["coverage@20"]
    assert 0 < metrics["ndcg@10"] <= metrics["hr@10"] and metrics["ndcg@20"] <= metrics["hr@20"]
    assert report["n_test"] == 671 and report["details"]["n_items_ranked"] == 9066
    assert report["model"]["family"] == "mf_bpr"
    low, high = report["ci95"]["ndcg@20"]
    assert low <= metrics["ndcg@20"] <= high
    assert metrics["ndcg@10"] > _popularity_ndcg(prepared)
    assert set(mf_run.leaderboard.family) == {"mf_bpr"} and len(mf_run.leaderboard) == 2


def test_recommend_returns_unseen_items_and_says_when_it_falls_back(mf_run, caplog):
    rec = automl.load(mf_run.run_dir)
    known = rec.user_ids[:3]
    out = rec.recommend(known + ["nobody"], k=10)
    assert list(out.columns) == ["user", "rank", "item", "score", "source"] and len(out) == 40
    for user in known:
        mine = out[out.user == user]
        assert mine["rank"].tolist() == list(range(1, 11)) and (mine.source == "model").all()
        assert not set(mine.item) & set(rec.seen(user))  # nothing the user has interacted with
        assert mine.score.is_monotonic_decreasing and mine.item.is_unique
    fallback = out[out.user == "nobody"]
    assert (fallback.source == "popularity (unknown user)").all() and out.attrs["unknown_users"] == ["nobody"]
    assert "unknown to the model" in caplog.text
    # the fallback is the most interacted-with items, most popular first
    assert fallback.item.iloc[0] == pd.Series(np.asarray(rec.item_ids)[rec.items.numpy()]).value_counts().index[0]


def test_cli_searches_the_transformer_and_the_recommender_loads(automl_cli, tmp_path):
    run_dir = tmp_path / "D"
    proc = subprocess.run([automl_cli, "domain=recommendation", "dataset=movielens", "search.n_trials=2",
                           "trainer.max_epochs=2", "search.families=[sasrec]", f"run_dir={run_dir}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "metrics.json").read_text())
    assert {"hr@10", "ndcg@10"} <= set(report["test"]) and report["model"]["family"] == "sasrec"
    assert (run_dir / "predictor" / "transformer" / "config.json").exists()
    assert not list(run_dir.rglob("*.pkl")) and not list(run_dir.rglob("*.pt"))
    rec = automl.load(run_dir)
    user = rec.user_ids[0]
    items = rec.recommend([user], k=10).item.tolist()
    assert len(items) == 10 and not set(items) & set(rec.seen(user))


def test_explicit_task_predicts_ratings(tmp_path):
    overrides = ["domain.task=explicit", "search.n_trials=2", "trainer.max_epochs=3", "search.n_workers=0"]
    result = AutoML(domain="recommendation", overrides=overrides).fit(dataset="movielens", run_dir=tmp_path / "E")
    assert result.metric == "rmse" and result.family == "neumf"
    assert result.test_metrics["rmse"] < 1.0  # the global mean scores 1.05 on random splits of this data
    rec = automl.load(result.run_dir)
    rows = pd.DataFrame({"userId": [1, 1, 2, 424242], "movieId": [31, 1029, 10, 31]})
    ratings = rec.predict(rows)
    assert ratings.between(0.5, 5.0).all() and ratings.iloc[3] == pytest.approx(rec.info.rating_mean)
    top = rec.recommend(1, k=5)
    assert len(top) == 5 and top.score.between(0.5, 5.0).all()
