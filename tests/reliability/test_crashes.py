"""Crashes, signals and dead workers, through the real `automl` command: nothing finished is lost, nothing is
left `running`, the same command finishes what was cut short, and every stop says what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from automl.testing import faults

pytestmark = pytest.mark.e2e

#: Trials long enough (a couple of seconds) to be caught mid-training, with nothing pruned or stopped early.
SLOW_TRIALS = ["data.target=Status", "search.families=[mlp]", "search.batch=1", "search.pruner=none",
               "trainer.max_epochs=12", "trainer.patience=12", "search.ensemble.size=0"]


def _states(run_dir) -> set[str]:
    return set(pd.read_csv(run_dir / "leaderboard.csv").state)


def test_kill_9_of_the_process_group_then_the_same_command_finishes_the_run(automl_cli, credit_csv, tmp_path):
    run_dir = tmp_path / "run"
    command = [f"data.path={credit_csv}", *SLOW_TRIALS, "search.n_trials=8", "search.n_workers=1",
               f"run_dir={run_dir}"]
    proc = faults.start(command, tmp_path)
    training = {t.number for t in faults.wait_for_trials(run_dir, proc, complete=3)}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = {t.number: t.params for t in faults.by_state(faults.trials(run_dir), "RUNNING")}
    assert interrupted

    again = subprocess.run([automl_cli, *command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "continuing the unfinished run 1 of this run directory" in again.stderr
    found = faults.trials(run_dir)
    finished = faults.by_state(found, "COMPLETE", "PRUNED")
    assert len(finished) == 8  # exactly the run's n_trials, not 8 more
    failed = faults.by_state(found, "FAIL")
    assert {t.number for t in failed} == set(interrupted)
    for t in failed:
        assert t.user_attrs["interrupted"] and "interrupted" in t.user_attrs["fail_reason"]
        rerun = [r for r in finished if r.user_attrs.get("rerun_of") == t.number]
        assert len(rerun) == 1 and rerun[0].params.items() >= t.params.items()  # its parameters evaluated again
        if t.number in training:  # killed mid-training (not mid-sampling): every parameter was recorded
            assert rerun[0].params == t.params
    assert faults.duplicated_params(found) == 0
    assert "running" not in _states(run_dir)
    # the run is finished now: the same command starts another run of n_trials more (and says so)
    third = subprocess.run([automl_cli, *command[:-2], "search.n_trials=1", f"run_dir={run_dir}"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "the last run of this run directory finished" in third.stderr
    assert len(faults.by_state(faults.trials(run_dir), "COMPLETE", "PRUNED")) == 9


@pytest.mark.parametrize("which", ["sibling", "zygote"])
def test_kill_9_of_one_of_two_workers_is_reported_and_no_trial_stays_running(credit_csv, tmp_path, which):
    run_dir = tmp_path / "run"
    proc = faults.start([f"data.path={credit_csv}", *SLOW_TRIALS, "search.n_trials=6", "search.n_workers=2",
                         f"run_dir={run_dir}"], tmp_path)
    running = faults.wait_for_trials(run_dir, proc, complete=0, running=2)
    zygote = faults.zygote_pid(proc.pid)
    pids = {faults.pid_of(t) for t in running}
    assert zygote in pids
    os.kill(zygote if which == "zygote" else next(p for p in pids if p != zygote), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "Traceback" not in err
    assert "died (killed by SIGKILL)" in err
    assert "running" not in _states(run_dir)
    lost = faults.by_state(faults.trials(run_dir), "FAIL")
    assert lost and all(t.user_attrs.get("interrupted") for t in lost)
    time.sleep(0.5)
    assert not faults.session_alive(proc.pid)  # no worker outlived the run


@pytest.mark.parametrize("sig, code, reason", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_stop_signal_writes_the_finished_trials_and_records_the_interrupted_one(credit_csv, tmp_path, sig, code,
                                                                                  reason):
    run_dir = tmp_path / "run"
    proc = faults.start([f"data.path={credit_csv}", *SLOW_TRIALS, "search.n_trials=8", "search.n_workers=1",
                         f"run_dir={run_dir}"], tmp_path)
    faults.wait_for_trials(run_dir, proc, complete=2)
    # Ctrl-C in a terminal reaches the whole process group; systemd's and Docker's SIGTERM the automl process
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "run the same command again" in err.lower() and "Traceback" not in err
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert "running" not in set(board.state)
    stopped = board[board.state == "fail"]
    assert len(stopped) >= 1 and all(reason in r for r in stopped.fail_reason)
    assert len(board[board.state == "complete"]) >= 2
    assert (run_dir / "metrics.json").exists() and (run_dir / "predictor" / "predictor.json").exists()
    time.sleep(0.5)
    assert not faults.session_alive(proc.pid)  # no worker outlived the run


def test_a_second_ctrl_c_exits_at_once(credit_csv, tmp_path):
    run_dir = tmp_path / "run"
    proc = faults.start([f"data.path={credit_csv}", *SLOW_TRIALS, "search.n_trials=8", "search.n_workers=1",
                         f"run_dir={run_dir}"], tmp_path)
    faults.wait_for_trials(run_dir, proc, complete=1)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130 and time.monotonic() - started < 5


def test_a_torn_journal_continues_with_every_finished_trial(credit_frame, tmp_path):
    from automl import AutoML

    data = credit_frame.drop(columns=["rownames"])
    overrides = ["search.n_workers=0", "search.families=[mlp]", "trainer.max_epochs=2", "search.n_trials=3"]
    AutoML(overrides=overrides).fit(data=data, target="Status", run_dir=tmp_path)
    faults.cut_last_record(tmp_path / "study.journal")
    before = {t.number: t.value for t in faults.by_state(faults.trials(tmp_path), "COMPLETE")}
    AutoML(overrides=overrides).fit(data=data, target="Status", run_dir=tmp_path)
    after = {t.number: t.value for t in faults.by_state(faults.trials(tmp_path), "COMPLETE")}
    assert before and all(after[n] == v for n, v in before.items())  # every earlier finished trial intact
    assert len(after) == len(before) + 3
    assert list(tmp_path.glob("study.journal.torn-*"))


def test_a_journal_damaged_beyond_its_tail_is_one_line(credit_frame, tmp_path):
    from automl import AutoML
    from automl.errors import DataError

    (tmp_path / "study.journal").write_text('{"op_code": 0, "worker_id": "x"}\n{"op_code": 999}\nnot json\n')
    with pytest.raises(DataError, match="cannot be read") as err:
        AutoML(overrides=["search.n_workers=0", "search.n_trials=1"]).fit(
            data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    assert "\n" not in str(err.value)
