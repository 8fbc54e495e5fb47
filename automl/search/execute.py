"""Run the trials of one invocation against the run's study, then finalize the best model."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from automl.search.workers import WorkerPool

    from automl.config import RunConfig
    from automl.pipeline import Prepared
    from automl.plugins import PluginHost
    from automl.run import Plan

log = logging.getLogger(__name__)


@dataclass
class SearchOutcome:
    trials: list[Any]
    n_new: int
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    family: str
    test_metrics: dict[str, Any]


def choose_device(accelerator: str) -> "torch.device":
    import torch

    from automl.errors import ConfigError

    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ConfigError("trainer.accelerator=cuda but torch sees no CUDA device: use trainer.accelerator=auto")
        return torch.device("cuda")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps but MPS is not available: use trainer.accelerator=auto")
    if accelerator not in ("cpu", "mps"):
        raise ConfigError(f"trainer.accelerator={accelerator!r} is not valid: use auto, cpu, cuda or mps")
    return torch.device(accelerator)


def execute_search(cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared",
                   run_dir: Path, pool: "WorkerPool | None" = None) -> SearchOutcome:
    """Run this invocation's trials (in worker processes when `pool` is given, else here), then finalize."""
    from automl.progress import StudyProgress
    from automl.search.study import check_continuation, enqueue_each_family, fail_interrupted_trials, open_study

    study = open_study(cfg.search, run_dir, plan.objective.direction, cfg.seed)
    check_continuation(study, plan.objective.direction, plan.objective.name, prepared.fingerprint, str(run_dir))
    if cfg.search.storage is None:  # our own file, under our run lock: RUNNING trials are leftovers
        fail_interrupted_trials(study)
    n_before = len(study.trials)
    enqueue_each_family(study, [f.name for f in plan.families], cfg.search.n_trials)
    where = f"{pool.n_workers} worker process(es)" if pool else "this process"
    log.info("searching %s over %s in %s (%s trials%s), objective %s; study %s", plan.domain.name,
             ", ".join(f.name for f in plan.families), where, cfg.search.n_trials or "unlimited",
             f", {cfg.search.timeout:g} s" if cfg.search.timeout else "", plan.objective.name,
             "continued" if n_before else "new")
    progress = StudyProgress(cfg.search.n_trials, cfg.search.timeout, plan.objective.direction, plan.objective.name)
    try:
        if pool is not None:
            final = _with_workers(cfg, plan, prepared, run_dir, pool, progress)
        else:
            final = _in_process(cfg, host, plan, prepared, run_dir, study, progress)
    finally:
        progress.close()
    from optuna.trial import TrialState

    # Trials queued but never started (a timeout ended the search first) are not part of the leaderboard.
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    return SearchOutcome(trials, len(trials) - n_before, final["number"], final["value"], final["params"],
                         final["family"], final["test_metrics"])


def _with_workers(cfg: "RunConfig", plan: "Plan", prepared: "Prepared", run_dir: Path, pool: "WorkerPool",
                  progress: Any) -> dict[str, Any]:
    from automl.search.worker import Job

    job = Job(cfg=cfg, plan_names={"objective": plan.objective.name, "families": [f.name for f in plan.families]},
              prepared=prepared, run_dir=str(run_dir), n_workers=pool.n_workers, n_trials=cfg.search.n_trials,
              timeout=cfg.search.timeout, counter=pool.counter_path())
    pool.submit(job)
    return pool.follow(lambda e: progress.trial_done(e["number"], e["state"], e["value"], e.get("attrs", {})))


def _in_process(cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared", run_dir: Path,
                study: Any, progress: Any) -> dict[str, Any]:
    import torch

    from automl.run import require_completed
    from automl.search.finalize import finalize
    from automl.search.objective import Objective, SearchContext

    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    device = choose_device(cfg.trainer.accelerator)
    ctx = SearchContext.build(cfg, host, plan.domain, plan.pipeline, prepared, plan.families, plan.objective,
                              run_dir, device)

    def on_trial(study: Any, trial: Any) -> None:
        progress.trial_done(trial.number, trial.state.name, trial.value, trial.user_attrs)
        host.notify("automl_trial_finished", trial=trial, run_dir=str(run_dir))

    study.optimize(Objective(ctx), n_trials=cfg.search.n_trials, timeout=cfg.search.timeout, callbacks=[on_trial])
    require_completed(study.get_trials(deepcopy=False))
    final = finalize(ctx, study, plan)
    return {"number": final.number, "value": final.value, "family": final.family, "params": final.params,
            "test_metrics": final.test_metrics}


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
