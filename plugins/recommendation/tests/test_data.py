"""Interaction logs: column roles, id encoding, time order, leave-last-out, the explicit split, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl import AutoML
from automl.api import ConfigError, DataError

from automl_recommendation.data import encode, leave_last_out
from automl_recommendation.datasets import DEFAULT_COLUMNS


def test_leave_last_out_on_movielens_holds_out_each_users_latest_two(prepared, movielens):
    p = prepared.prepared
    a, info = p.arrays, p.info
    assert (info.n_users, info.n_items) == (671, 9066)
    assert len(a["user"]) == 100_004 and len(p.test) == len(p.val) == 671
    assert len(p.train) + len(p.val) + len(p.test) == len(a["user"])
    # each user's test row ends its block, validation is just before it, training rows start it
    assert np.array_equal(p.test, a["offsets"][1:] - 1)
    assert np.array_equal(p.val, a["offsets"][1:] - 2)
    # the held-out items are the latest by timestamp (ties: the larger movieId comes later)
    raw = movielens.sort_values(["userId", "timestamp", "movieId"])
    last = raw.groupby("userId").tail(1)
    item_ids = np.asarray(p.state["item_ids"])
    assert np.array_equal(item_ids[a["item"][p.test]], last.movieId.to_numpy())
    assert np.array_equal(np.asarray(p.state["user_ids"])[a["user"][p.test]], last.userId.to_numpy())


def test_ties_in_time_are_broken_by_item_id_and_repeats_count_once():
    frame = pd.DataFrame({
        "user": ["a", "a", "a", "a", "a", "b", "b", "b"],
        "item": [30, 10, 20, 10, 40, 1, 2, 3],
        "timestamp": [5, 5, 5, 9, 2, 1, 2, 3],
    })
    data = encode(frame, "t", DEFAULT_COLUMNS, "implicit")
    items = np.asarray(data.item_ids)[data.item]
    # user a: 40 (t=2), then 10, 20, 30 (t=5, by id); the repeat of 10 at t=9 counts once, at its first time
    assert items[: data.offsets[1]].tolist() == [40, 10, 20, 30]
    train, val, test = leave_last_out(data, min_interactions=3)
    assert items[test].tolist() == [30, 3] and items[val].tolist() == [20, 2]
    assert items[train].tolist() == [40, 10, 1]


def test_users_with_too_little_history_train_but_are_not_evaluated():
    frame = pd.DataFrame({"user": [1, 1, 2, 2, 2, 2], "item": [1, 2, 1, 2, 3, 4], "timestamp": [1, 2, 1, 2, 3, 4]})
    data = encode(frame, "t", DEFAULT_COLUMNS, "implicit")
    train, val, test = leave_last_out(data, min_interactions=3)
    assert data.user[test].tolist() == [1] and len(train) == 4  # user index 0 (id 1): both rows train
    with pytest.raises(DataError, match="min_interactions"):
        leave_last_out(data, min_interactions=5)


def test_own_file_with_dates_and_renamed_columns(small_log, host, tmp_path):
    from automl.testing import prepare_domain

    p = prepare_domain(host, ["domain=recommendation", f"data.path={small_log}",
                              "domain.options.time_column=when"]).prepared
    frame = pd.read_csv(small_log)
    assert p.info.n_users == frame.user.nunique() == 60 and len(p.test) == 60
    assert len(p.arrays["user"]) == len(frame)


def test_missing_column_is_one_clear_line(small_log, host, tmp_path):
    automl = AutoML(domain="recommendation", overrides=[f"data.path={small_log}", "search.n_workers=0"], host=host)
    with pytest.raises(DataError) as err:
        automl.fit(run_dir=tmp_path)
    message = str(err.value)
    assert "time column 'timestamp'" in message and "domain.options.time_column" in message
    assert "when" in message and "\n" not in message


def test_unusable_settings_are_refused(host, tmp_path):
    def fit(*overrides: str) -> None:
        AutoML(domain="recommendation", overrides=[*overrides, "search.n_workers=0"], host=host).fit(run_dir=tmp_path)

    with pytest.raises(ConfigError, match="data.target is not used"):
        fit("data.target=rating")
    with pytest.raises(ConfigError, match="not a recommendation task"):
        fit("domain.task=binary")
    with pytest.raises(ConfigError, match="unknown_option"):
        fit("+domain.options.unknown_option=1")


@pytest.mark.parametrize("family", ["mf_bpr", "sasrec"])
def test_the_lightning_engine_trains_with_the_pipelines_own_loss(small_log, host, tmp_path, family):
    """trainer.engine=lightning wraps the network with this pipeline's loss (BPR, next-item), not a tabular one."""
    result = AutoML(domain="recommendation", overrides=[
        f"data.path={small_log}", "domain.options.time_column=when", "search.n_workers=0",
        "trainer.engine=lightning", f"search.families=[{family}]",
        "search.n_trials=1", "trainer.max_epochs=2"], host=host).fit(run_dir=tmp_path)
    assert (result.leaderboard.state == "complete").all()
    assert result.test_metrics["ndcg@10"] >= 0.0 and result.load().recommend([1], k=3).shape[0] == 3


def test_explicit_split_is_the_hosts_seeded_random_split(host):
    from sklearn.model_selection import train_test_split

    from automl.testing import prepare_domain

    p = prepare_domain(host, ["domain=recommendation", "dataset=movielens", "domain.task=explicit"]).prepared
    assert p.info.task == "regression" and p.info.rating_min == 0.5 and p.info.rating_max == 5.0
    idx = np.arange(len(p.arrays["rating"]))
    dev, test = train_test_split(idx, test_size=0.2, random_state=0)  # what a baseline on the same rows does
    assert np.array_equal(np.sort(test), p.test)
    assert len(np.intersect1d(p.train, p.test)) == 0 and len(p.train) + len(p.val) + len(p.test) == len(idx)
    assert abs(p.info.rating_mean - p.arrays["rating"][p.train].mean()) < 1e-6


def test_a_dataframe_with_named_columns(small_log, host, tmp_path):
    frame = pd.read_csv(small_log).rename(columns={"user": "customer", "item": "sku"})
    result = AutoML(domain="recommendation", host=host, overrides=[
        "domain.options.user_column=customer", "domain.options.item_column=sku", "domain.options.time_column=when",
        "search.n_trials=1", "trainer.max_epochs=1", "search.n_workers=0", "search.families=[mf_bpr]",
    ]).fit(data=frame, run_dir=tmp_path / "run")
    assert result.outcome.final.report.n_test == 60 and result.details["n_items_ranked"] == frame.sku.nunique()
    rec = result.load()
    assert rec.meta.data["columns"]["user"] == "customer"
    assert len(rec.recommend(int(frame.customer.iloc[0]), k=5)) == 5
