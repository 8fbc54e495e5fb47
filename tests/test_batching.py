"""Batched rounds (`search.batch`): a round is one architecture under several training settings (auto: after a
warm-up of single trials, rounds of 32 on a GPU, of 8 on a CPU behind leaders narrow enough for stacking to pay);
the last trials are shared out between processes; the median pruner compares a round's members with each other
at the same epoch."""

from __future__ import annotations

import optuna
import pytest

from automl import AutoML
from automl.search.pruning import FamilyPruner
from automl.search.trials import CPU_MAX_WEIGHTS, WARMUP, RoundPlan, round_plan


def _search(frame, run_dir, *overrides):
    return AutoML(overrides=["search.n_workers=0", "search.families=[mlp]", "trainer.max_epochs=2",
                             "search.ensemble.size=0", "report=false", *overrides],
                  entry_points=False).fit(data=frame.drop(columns=["rownames"]), target="Status", run_dir=run_dir)


def test_a_round_shares_its_leaders_architecture_and_samples_the_rest(tmp_path, credit_frame):
    # four published defaults first (their own round), then rounds of four led by the sampler's first trial
    result = _search(credit_frame, tmp_path / "batched", "search.n_trials=12", "search.batch=4")
    board = result.leaderboard.set_index("number").sort_index()
    shared = ["param.mlp.depth", "param.mlp.width", "param.mlp.embedding"]
    for first in (4, 8):
        rnd = board.loc[first:first + 3]
        assert (rnd[shared].nunique(dropna=False) == 1).all(), rnd[shared]  # one architecture
        assert rnd["param.lr"].nunique() == 4  # each trial its own training settings
    assert board.loc[4, "param.mlp.width"] != board.loc[8, "param.mlp.width"] or \
        board.loc[4, "param.mlp.depth"] != board.loc[8, "param.mlp.depth"]  # each round its own leader
    # the leaderboard cannot tell a batched trial from one trained alone
    alone = _search(credit_frame, tmp_path / "alone", "search.n_trials=6", "search.batch=1")
    assert list(alone.leaderboard.columns) == list(result.leaderboard.columns)
    assert set(board["state"]) <= {"complete", "pruned"}


def test_places_that_pruned_trials_free_are_refilled_with_the_rounds_architecture(tmp_path, credit_frame):
    """Continuous batching: the median pruner stops some of a round's four trials after epoch 3 (a quarter of 12:
    still young), new trials of the leader's architecture take their places, up to eight in all; every one is
    an ordinary trial of the study with its own training settings and outcome."""
    result = _search(credit_frame, tmp_path / "refilled", "search.n_trials=14", "search.batch=4",
                     "trainer.max_epochs=12")
    board = result.leaderboard.set_index("number").sort_index()
    shared = ["param.mlp.depth", "param.mlp.width", "param.mlp.embedding"]
    rnd = board.loc[4:][(board.loc[4:, shared] == board.loc[4, shared]).all(axis=1)]
    assert 4 < len(rnd) <= 8 and list(rnd.index) == list(range(4, 4 + len(rnd)))
    assert rnd["param.lr"].nunique() == len(rnd) and set(rnd["state"]) <= {"complete", "pruned"}
    assert "pruned" in set(board.loc[4:7, "state"])


def test_auto_warms_up_one_trial_at_a_time_then_stacks_rounds_sized_by_the_device():
    import torch

    cpu, gpu = round_plan("auto", torch.device("cpu"), None, 2), round_plan("auto", torch.device("cuda"), None, 1)
    assert cpu == RoundPlan(8, WARMUP, CPU_MAX_WEIGHTS) and gpu == RoundPlan(32, WARMUP, None)
    assert [cpu.size_now(n) for n in (0, WARMUP - 1, WARMUP, 100)] == [1, 1, 8, 8]
    assert round_plan("auto", torch.device("cuda"), 40, 2).size == 20  # never more than a process's share
    assert round_plan("4", torch.device("cpu"), None, 2) == RoundPlan(4)  # explicit: rounds from the first trial


def test_a_leader_wider_than_stacking_pays_for_trains_alone(tmp_path, credit_frame, monkeypatch):
    """On a CPU, auto stacks a round only behind a leader of at most `CPU_MAX_WEIGHTS` weights: with the limit
    at zero every trial leads a round of one; with no limit, rounds of the leader's architecture."""
    import automl.search.trials as trials

    def plan(limit):
        return lambda *args: RoundPlan(4, 0, limit)

    monkeypatch.setattr(trials, "round_plan", plan(0))  # imported where the search starts, so patched here
    alone = _search(credit_frame, tmp_path / "alone", "search.n_trials=10", "search.batch=4").leaderboard
    sampled = alone.set_index("number").sort_index().loc[4:]
    assert len(sampled[["param.mlp.depth", "param.mlp.width"]].drop_duplicates()) == len(sampled)  # no sharing
    monkeypatch.setattr(trials, "round_plan", plan(None))
    rounds = _search(credit_frame, tmp_path / "rounds", "search.n_trials=8", "search.batch=4").leaderboard
    rnd = rounds.set_index("number").sort_index().loc[4:7]
    assert len(rnd[["param.mlp.depth", "param.mlp.width"]].drop_duplicates()) == 1


def test_the_last_trials_are_shared_out_between_the_processes(tmp_path):
    from automl.search.resume import run_key
    from automl.search.trials import Budget

    class Lock:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    study = optuna.create_study()
    budget = Budget(run_key(None, tmp_path), 10, None, Lock(), processes=2)
    sizes = []
    while asked := budget.ask(study, 8):
        sizes.append(len(asked))
        for t in asked:
            study.tell(t, 0.0)
    assert sizes == [5, 3, 1, 1]  # half of what is left, never the whole tail in one process's round
    budget.close()


def test_the_median_counts_a_rounds_members_at_the_same_epoch():
    """No trial has finished, so Optuna's median rule alone could not prune; the members running beside it at
    the same epoch are its peers (pruned ones are not, as in Optuna)."""
    study = optuna.create_study(direction="maximize",
                                pruner=FamilyPruner(optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                                n_warmup_steps=0)))
    trials = [study.ask() for _ in range(4)]
    for t, value in zip(trials, [0.9, 0.8, 0.7, 0.1]):
        t.report(value, 0)
    assert [t.should_prune() for t in trials] == [False, False, True, True]
    plain = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    trials = [plain.ask() for _ in range(4)]
    for t, value in zip(trials, [0.9, 0.8, 0.7, 0.1]):
        t.report(value, 0)
    assert not any(t.should_prune() for t in trials)  # what the rule would do without its peers


def test_memory_a_finished_group_freed_goes_back_to_the_system():
    """Stacks of ever-new sizes fragment the C heap, whose freed pieces glibc keeps: `release_memory`, called
    after each stacked group, gives their pages back (the resident set falls by what was freed)."""
    import torch

    from automl.training.device import _malloc_trim, release_memory

    if _malloc_trim() is None:
        pytest.skip("no glibc malloc_trim on this system")

    def resident_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    kept, freed = [], []
    for i in range(400):  # ~120 kB each, below glibc's mmap threshold: from the heap, kept apart by small tensors
        freed.append(torch.ones(30_000 + i))
        kept.append(torch.ones(16))
    del freed
    before = resident_mib()
    release_memory(torch.device("cpu"))
    assert before - resident_mib() > 20, "the freed 48 MB stayed resident"


def test_a_cross_validated_trial_reports_while_its_first_fold_has_stopped(tmp_path):
    """A trial's fold models train as one stack and stop early one by one: once its first fold has stopped, the
    trial still reports its epoch (from the folds still training) and finishes as an ordinary trial. (A small,
    easy table, where folds converge within a few epochs, at different ones.)"""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["Status"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame["rownames"] = range(len(frame))
    result = _search(frame, tmp_path, "search.n_trials=4", "search.batch=1", "search.cv.folds=3",
                     "trainer.max_epochs=20", "trainer.patience=2", "data.positive_class=malignant")
    board = result.leaderboard
    assert "fail" not in set(board["state"]), board[["state", "fail_reason"]]
    assert (board["epochs"] > 1).all()
