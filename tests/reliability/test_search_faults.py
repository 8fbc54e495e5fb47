"""Faults inside a search: a network that calls sys.exit(), a trial still training at the deadline, a process
that stops sending heartbeats to a shared database, a misspelled config key, a large table."""

from __future__ import annotations

import subprocess
import time

import pytest

from automl import AutoML, hookimpl
from automl.errors import ConfigError
from automl.specs import ModelFamily
from automl.tasks import TABULAR_TASKS


def _exiting_network(params, info):
    import sys

    import torch

    from automl.tabular.networks import FeatureInput

    class Exits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input = FeatureInput(info.n_num, tuple(info.cardinalities))
            self.linear = torch.nn.Linear(self.input.out_features, info.n_outputs)

        def forward(self, x_num, x_cat):
            if params["exit"]:
                sys.exit(3)  # a plugin's network that ends the process its way
            return self.linear(self.input(x_num, x_cat))

    return Exits()


class ExitingPlugin:
    @hookimpl
    def automl_register_model_families(self):
        return [ModelFamily("exiting", TABULAR_TASKS, lambda t, info: {"exit": t.suggest_categorical("exit", [0, 1])},
                            network=_exiting_network)]


def test_a_network_calling_sys_exit_fails_its_trial_not_the_search(tmp_path, credit_frame):
    result = AutoML(overrides=["search.n_workers=0", "search.families=[exiting]", "search.n_trials=6",
                               "search.sampler=random", "trainer.max_epochs=1", "search.ensemble.size=0"],
                    plugins=[("exiting", ExitingPlugin())], entry_points=False).fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    board = result.leaderboard
    failed = board[board.state == "fail"]
    assert len(failed) and all(r == "the model called sys.exit(3)" for r in failed.fail_reason)
    assert (board.state == "complete").any() and "running" not in set(board.state)


def test_the_timeout_stops_a_trial_mid_epoch_and_records_it_pruned(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 30_000  # trials of a few seconds on one thread: some finish, the one running at the deadline is cut
    frame = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"x{i}" for i in range(12)])
    frame["y"] = (frame.x0 + rng.normal(size=n) > 0).astype(int)
    started = time.perf_counter()
    result = AutoML(overrides=["search.n_workers=0", "search.families=[mlp]", "search.timeout=12",
                               "search.n_trials=null", "search.batch=1", "trainer.max_epochs=3",
                               "search.pruner=none", "search.ensemble.size=0"]).fit(
        data=frame, target="y", run_dir=tmp_path)
    wall = time.perf_counter() - started
    assert wall < 12 * 1.25, wall
    board = result.leaderboard
    stopped = board[board.state == "pruned"]
    assert len(stopped) >= 1 and any("deadline" in s for s in stopped.stopped)


def test_a_process_that_stops_sending_heartbeats_has_its_trial_failed_with_a_reason_and_queued_again(tmp_path):
    import optuna

    from automl.search.resume import StudyRun, ask, fail_stale

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'shared.db'}", heartbeat_interval=1,
                                         grace_period=1)
    study = optuna.create_study(storage=storage, study_name="s")
    key = "machine-a:/runs/a"
    StudyRun(key=key, n_trials=3, target=3).save(study)
    trial = ask(study, key, 1)[0]
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    storage.record_heartbeat(trial._trial_id)  # then the machine dies: no more heartbeats
    time.sleep(2.2)
    assert fail_stale(study) == [0]
    frozen = study.trials[0]
    assert frozen.state.name == "FAIL" and frozen.user_attrs["interrupted"]
    assert "no heartbeat from" in frozen.user_attrs["fail_reason"] and "died" in frozen.user_attrs["fail_reason"]
    queued = StudyRun.of(study, key).reruns
    assert queued == [{"params": frozen.params, "of": 0}]
    again = ask(study, key, 1)[0]  # that run's next trial replays it
    assert again.user_attrs["rerun_of"] == 0


def test_a_misspelled_key_names_the_right_one(automl_cli, tmp_path):
    proc = subprocess.run([automl_cli, "search.n_trial=3"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "automl: error: unknown config key 'search.n_trial': did you mean search.n_trials? (`automl --help` shows "
        "every key and its value)"]
    with pytest.raises(ConfigError, match="did you mean trainer.max_epochs"):
        AutoML(overrides=["trainer.max_epoch=3"])


@pytest.mark.parametrize("rows", [1_000, 48_000, 480_000, 5_000_000])
def test_batch_sizes_scale_with_the_rows(rows):
    from automl.tabular.pipeline import batch_size_for

    steps = rows / batch_size_for(rows)
    assert steps <= 256 or batch_size_for(rows) == 8192  # no 4,800-step epochs


def test_the_progress_moves_within_a_long_trial(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from automl.progress import StudyProgress
    from automl.search.trials import TrialRound

    notes: list[str] = []
    monkeypatch.setattr(StudyProgress, "note", lambda self, text: notes.append(text))
    monkeypatch.setattr(TrialRound, "PROGRESS_EVERY_S", 0.0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20_000, 4)), columns=list("abcd")).assign(y=lambda f: (f.a > 0).astype(int))
    AutoML(overrides=["search.n_workers=0", "search.families=[mlp]", "search.n_trials=1",
                      "trainer.max_epochs=1", "search.ensemble.size=0"]).fit(data=frame, target="y", run_dir=tmp_path)
    assert any(n.startswith("trial 0: epoch 1, ") and n.endswith("%") for n in notes), notes
