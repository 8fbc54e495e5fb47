"""Several worker processes share one study: exact trial budgets, resume, errors relayed as one line."""

from __future__ import annotations

import pandas as pd
import pytest

from automl import AutoML
from automl.errors import AutoMLError, ConfigError


def _fit(run_dir, data, *overrides):
    return AutoML(overrides=["search.families=[mlp]", "trainer.max_epochs=2", *overrides]).fit(
        data=data, target="Status", run_dir=run_dir)


@pytest.fixture(scope="module")
def data(credit_frame):
    return credit_frame.drop(columns=["rownames"])


def test_two_workers_run_exactly_the_budget_then_continue(tmp_path, data):
    import optuna

    from automl.search.study import make_storage

    first = _fit(tmp_path, data, "search.n_workers=2", "search.n_trials=5")
    assert len(first.leaderboard) == 5 and sorted(first.leaderboard.number) == [0, 1, 2, 3, 4]
    second = _fit(tmp_path, data, "search.n_workers=2", "search.n_trials=3")
    assert len(second.leaderboard) == 8
    assert second.test_metrics["roc_auc"] > 0.7
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert board.state.isin(["complete", "pruned"]).all()
    assert second.load().predict_proba(data.head(3)).shape == (3, 2)
    # both workers took part: in each run, some trial started before another one had finished
    trials = optuna.load_study(study_name="automl", storage=make_storage(None, tmp_path)).trials
    for run in (trials[:5], trials[5:]):
        spans = sorted((t.datetime_start, t.datetime_complete) for t in run)
        assert any(later_start < end for (_, end), (later_start, _) in zip(spans, spans[1:])), spans


def test_the_timeout_bounds_the_whole_run(tmp_path, data):
    import time

    started = time.perf_counter()
    result = _fit(tmp_path, data, "search.n_workers=2", "search.n_trials=null", "search.timeout=12")
    elapsed = time.perf_counter() - started
    assert elapsed <= 12 * 1.1, elapsed  # search, ensemble, test evaluation and files
    assert (result.leaderboard.state == "complete").sum() >= 2


def test_too_short_a_timeout_is_one_clear_line(tmp_path, data):
    with pytest.raises(AutoMLError, match=r"no trial finished within search.timeout=1"):
        # trials long enough that none can finish within the second, however fast the engine gets
        _fit(tmp_path, data, "search.n_workers=0", "search.n_trials=null", "search.timeout=1",
             "trainer.max_epochs=500", "trainer.patience=500")


def test_worker_errors_reach_the_user_as_one_line(tmp_path, data):
    with pytest.raises(ConfigError, match="trainer.accelerator=cuda but torch sees no CUDA device"):
        _fit(tmp_path, data, "search.n_workers=1", "search.n_trials=1", "trainer.accelerator=cuda")


def test_in_process_plugins_cannot_use_workers(tmp_path, data):
    class Nothing:
        pass

    with pytest.raises(ConfigError, match="registered in-process .*use search.n_workers=0"):
        AutoML(overrides=["search.n_workers=2"], plugins=[("nothing", Nothing())]).fit(
            data=data, target="Status", run_dir=tmp_path)
