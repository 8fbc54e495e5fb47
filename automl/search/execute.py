"""Run the trials of one invocation against the run's study, then finalize the best model.

Trials run in worker processes (`automl.search.worker_handle`) or, with `search.n_workers=0`, here; either
way the study is the single source of truth and the result is one `SearchOutcome`. What the invocation
continues (an unfinished run, or a new one) is decided first (`automl.search.resume`); a stop request or a dead
worker ends it with the finished trials' files written and the cut-short trials queued to run again.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import Interrupted
from automl.records import FinalModel, SearchOutcome, TrialRecord

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import Prepared
    from automl.plan import Plan
    from automl.progress import StudyProgress
    from automl.search.resume import StudyRun
    from automl.search.study import StudyLock
    from automl.search.worker_handle import WorkerHandle
    from automl.stopping import StopRequest

log = logging.getLogger(__name__)


def execute_search(cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared",
                   run_dir: Path, workers: "WorkerHandle | None" = None, deadline: Optional[float] = None,
                   stop: Optional["StopRequest"] = None) -> SearchOutcome:
    """Run this invocation's trials (in worker processes when `workers` is given, else here) until the run's
    total is reached, `deadline` (a `time.time()`) passes or `stop` is requested, then finalize."""
    from optuna.trial import TrialState

    from automl.progress import StudyProgress
    from automl.search.resume import begin_run, counted, finish_run, interrupt_running, process_name, run_key
    from automl.search.study import StudyLock, check_continuation, open_study
    from automl.stopping import StopRequest

    stop = stop if stop is not None else StopRequest()
    r = plan.requirements
    study = open_study(cfg.search, run_dir, plan.directions, cfg.seed, owner=True)
    check_continuation(study, plan.directions, ",".join(r.objectives) if r and r.multi else plan.objective.name,
                       prepared.fingerprint, str(run_dir))
    lock = StudyLock(cfg.search, run_dir, study._storage)
    own = cfg.search.storage is None  # the run directory's journal, under our run lock: no one else runs trials
    with lock:
        if own:
            left = interrupt_running(study, "the process running it stopped mid-trial (a crash or a kill)")
            if left:
                log.warning("trial(s) %s were left running by a process that died: recorded as interrupted",
                            ", ".join(map(str, left)))
        key = run_key(cfg.search.storage, run_dir)
        run, how = begin_run(study, key, cfg.search.n_trials, list(plan.families), prepared.info)
        done = counted(study.get_trials(deepcopy=False), key) - run.start
    n_before = len([t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING])
    where = f"{workers.n_workers} worker process(es)" if workers else "this process"
    log.info("%s; searching %s over %s in %s (%s trials%s), objective %s", how, plan.domain.name,
             ", ".join(f.name for f in plan.families), where, cfg.search.n_trials or "unlimited",
             f", {cfg.search.timeout:g} s" if cfg.search.timeout else "", plan.objective.name)
    stop.check()  # Ctrl-C while the data was loading: nothing started, nothing to record
    progress = StudyProgress(cfg.search.n_trials, plan.objective.direction, plan.objective.name, done=done)
    outcome = SearchOutcome([], 0, None)
    ours = {process_name()}  # this invocation's processes: a shared study's other machines are not ours to fail
    try:
        if workers is not None:
            _with_workers(cfg, plan, prepared, run_dir, workers, progress, deadline, run, outcome, ours)
        else:
            _in_process(cfg, host, plan, prepared, run_dir, study, progress, deadline, lock, stop, run, outcome)
    finally:
        progress.close()
        with lock:  # whatever happened, no trial of this invocation stays RUNNING in the study
            orphans = interrupt_running(study, "its worker process stopped mid-trial", None if own else ours)
            finish_run(study, key, deadline is not None and time.time() >= deadline and not outcome.interrupted)
        if orphans:
            outcome.lost = sorted(set(outcome.lost) | set(orphans))
    # Trials queued but never started (a timeout ended the search first) are not part of the leaderboard.
    outcome.trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    outcome.n_new = len(outcome.trials) - n_before
    return outcome


def _with_workers(cfg: "RunConfig", plan: "Plan", prepared: "Prepared", run_dir: Path, workers: "WorkerHandle",
                  progress: "StudyProgress", deadline: Optional[float], run: "StudyRun",
                  outcome: SearchOutcome, ours: set[str]) -> None:
    from automl.search.worker_process import Job

    job = Job(cfg=cfg, plan_names=plan.names, prepared=prepared, run_dir=str(run_dir),
              n_workers=workers.n_workers, run_key=run.key, target=run.target, deadline=deadline)
    workers.submit(job)
    try:
        ended = workers.follow(lambda e: progress.trial_done(e["number"], e["state"], e["value"],
                                                             TrialRecord(**e.get("record", {}))),
                               progress.note)
    finally:
        ours |= workers.processes()
    outcome.final = FinalModel.from_json(ended["final"]) if ended.get("final") else None
    outcome.interrupted = ended.get("interrupted")
    outcome.exit_code = int(ended.get("exit_code") or 0)
    outcome.problems += ended.get("problems", [])
    outcome.lost += ended.get("lost", [])


def _in_process(cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared", run_dir: Path,
                study: Any, progress: "StudyProgress", deadline: Optional[float], lock: "StudyLock",
                stop: "StopRequest", run: "StudyRun", outcome: SearchOutcome) -> None:
    from automl.search.context import SearchContext, run_end
    from automl.search.finalize import finalize
    from automl.search.study import has_completed, require_completed
    from automl.search.trials import Budget, round_plan, run_trials
    from automl.training.device import choose_device
    from automl.training.engine import torch_threads

    with torch_threads(cfg.trainer.threads):
        device = choose_device(cfg.trainer.accelerator)
        ctx = SearchContext.build(cfg, host, plan, prepared, run_dir, device)
        ctx.finish_by = run_end(cfg.search.timeout, deadline)

        def on_trial(study: Any, trial: Any) -> None:
            progress.trial_done(trial.number, trial.state.name, trial.values[0] if trial.values else None,
                                TrialRecord.of(trial))
            host.notify("automl_trial_finished", trial=trial, run_dir=str(run_dir))

        rounds = round_plan(cfg.search.batch, device, cfg.search.n_trials, 1)
        try:
            run_trials(ctx, study, Budget(run.key, run.target, deadline, lock, stop), rounds, on_trial, progress.note)
        except Interrupted as exc:
            outcome.interrupted, outcome.exit_code = exc.reason, exc.exit_code
            if not has_completed(study.get_trials(deepcopy=False)):
                return
        require_completed(study.get_trials(deepcopy=False), cfg.search.timeout)
        outcome.final = finalize(ctx, study)
