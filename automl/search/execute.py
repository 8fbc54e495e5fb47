"""Run the trials of one invocation against the run's study, then finalize the best model.

Trials run in worker processes (`automl.search.worker_handle`) or, with `search.n_workers=0`, here; either
way the study is the single source of truth and the result is one `SearchOutcome`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.records import FinalModel, SearchOutcome, TrialRecord

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import Prepared
    from automl.plan import Plan
    from automl.progress import StudyProgress
    from automl.search.worker_handle import WorkerHandle

log = logging.getLogger(__name__)


def execute_search(cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared",
                   run_dir: Path, workers: "WorkerHandle | None" = None) -> SearchOutcome:
    """Run this invocation's trials (in worker processes when `workers` is given, else here), then finalize."""
    from optuna.trial import TrialState

    from automl.progress import StudyProgress
    from automl.search.study import check_continuation, enqueue_each_family, fail_interrupted_trials, open_study

    study = open_study(cfg.search, run_dir, plan.objective.direction, cfg.seed)
    check_continuation(study, plan.objective.direction, plan.objective.name, prepared.fingerprint, str(run_dir))
    if cfg.search.storage is None:  # our own file, under our run lock: RUNNING trials are leftovers
        fail_interrupted_trials(study)
    n_before = len(study.trials)
    enqueue_each_family(study, [f.name for f in plan.families], cfg.search.n_trials)
    where = f"{workers.n_workers} worker process(es)" if workers else "this process"
    log.info("searching %s over %s in %s (%s trials%s), objective %s; study %s", plan.domain.name,
             ", ".join(f.name for f in plan.families), where, cfg.search.n_trials or "unlimited",
             f", {cfg.search.timeout:g} s" if cfg.search.timeout else "", plan.objective.name,
             "continued" if n_before else "new")
    progress = StudyProgress(cfg.search.n_trials, plan.objective.direction, plan.objective.name)
    try:
        if workers is not None:
            final = _with_workers(cfg, plan, prepared, run_dir, workers, progress)
        else:
            final = _in_process(cfg, host, plan, prepared, run_dir, study, progress)
    finally:
        progress.close()
    # Trials queued but never started (a timeout ended the search first) are not part of the leaderboard.
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    return SearchOutcome(trials, len(trials) - n_before, final)


def _with_workers(cfg: "RunConfig", plan: "Plan", prepared: "Prepared", run_dir: Path, workers: "WorkerHandle",
                  progress: "StudyProgress") -> FinalModel:
    from automl.search.worker_process import Job

    job = Job(cfg=cfg, plan_names=plan.names, prepared=prepared, run_dir=str(run_dir),
              n_workers=workers.n_workers, counter=workers.counter_path())
    workers.submit(job)
    return workers.follow(lambda e: progress.trial_done(e["number"], e["state"], e["value"],
                                                        TrialRecord(**e.get("record", {}))))


def _in_process(cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared", run_dir: Path,
                study: Any, progress: "StudyProgress") -> FinalModel:
    from automl.search.finalize import finalize
    from automl.search.objective import Objective, SearchContext
    from automl.search.study import require_completed
    from automl.training.device import choose_device
    from automl.training.engine import torch_threads

    with torch_threads(cfg.trainer.threads):
        ctx = SearchContext.build(cfg, host, plan, prepared, run_dir, choose_device(cfg.trainer.accelerator))

        def on_trial(study: Any, trial: Any) -> None:
            progress.trial_done(trial.number, trial.state.name, trial.value, TrialRecord.of(trial))
            host.notify("automl_trial_finished", trial=trial, run_dir=str(run_dir))

        study.optimize(Objective(ctx), n_trials=cfg.search.n_trials, timeout=cfg.search.timeout,
                       callbacks=[on_trial])
        require_completed(study.get_trials(deepcopy=False))
        return finalize(ctx, study)
