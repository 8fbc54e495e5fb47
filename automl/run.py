"""One run, end to end. The SDK and the CLI both end here; this module only orchestrates.

```
RunConfig -> plan.resolve (domain, typed options, pipeline) -> Resolution.prepare (host process: pandas,
          scikit-learn) -> Resolution.plan -> search.execute (Optuna study in run_dir; trials in worker
          processes or in-process; the best model finalized) -> run_dir: leaderboard.csv, metrics.json,
          predictor/ -> RunResult
```
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.records import SearchOutcome
    from automl.search.worker_handle import WorkerHandle

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run returns (and what `automl_run_finished` observers receive)."""

    run_dir: Path
    leaderboard: "pd.DataFrame"
    outcome: "SearchOutcome"
    #: The objective the study optimised.
    metric: str
    #: True when trials were scored by cross-validation (small data) rather than one validation split.
    cross_validated: bool = False

    @property
    def best_params(self) -> dict[str, Any]:
        return self.outcome.final.params

    @property
    def best_value(self) -> float:
        return self.outcome.final.value

    @property
    def family(self) -> str:
        return self.outcome.final.family

    @property
    def test_metrics(self) -> dict[str, Optional[float]]:
        """The final model's metric values on the untouched test rows (metrics.json `test`)."""
        return self.outcome.final.report.test

    @property
    def ci95(self) -> dict[str, list[float]]:
        """95% intervals of test metrics, where the domain computes them (metrics.json `ci95`)."""
        return self.outcome.final.report.ci95

    @property
    def details(self) -> dict[str, Any]:
        """The domain's structured results: a decision, fairness, an operating point (metrics.json `details`)."""
        return self.outcome.final.report.details

    @property
    def n_trials(self) -> int:
        return len(self.leaderboard)

    def load(self) -> Any:
        """The saved predictor (same as `automl.load(run_dir)`)."""
        from automl.predictor import load

        return load(self.run_dir)


def resolve_run_dir(cfg: "RunConfig") -> Path:
    """The configured run directory, or a new timestamped one under runs/ (never an existing one)."""
    if cfg.run_dir:
        return Path(cfg.run_dir).expanduser()
    base = Path("runs") / time.strftime("%Y-%m-%d_%H-%M-%S")
    path, n = base, 0
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return path


def run(cfg: "RunConfig", host: "PluginHost", frame: "pd.DataFrame | None" = None,
        workers: Optional["WorkerHandle"] = None) -> RunResult:
    """Run a whole search as configured.

    `workers`: a worker process started ahead (the CLI starts one before composing the config); used when the
    run wants workers, closed otherwise.
    """
    from automl.artifacts import versions, write_leaderboard, write_metrics, write_run_summary
    from automl.plan import resolve
    from automl.records import RunSummary
    from automl.search.execute import execute_search
    from automl.search.study import RunLock
    from automl.search.worker_handle import WorkerHandle, resolve_workers

    resolution = resolve(cfg, host)
    run_dir = resolve_run_dir(cfg)
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with RunLock(run_dir):
        n_workers = resolve_workers(cfg, host)
        if workers is not None and not n_workers:
            workers.close()
            workers = None
        # Started first: its imports (torch, plugins) overlap the data loading below.
        workers = (workers or WorkerHandle()).sized(n_workers) if n_workers else None
        try:
            prepared = resolution.prepare(cfg, host, frame)
            plan = resolution.plan(cfg, host, prepared.info)
            outcome = execute_search(cfg, host, plan, prepared, run_dir, workers)
        finally:
            if workers is not None:
                workers.close()
        leaderboard = write_leaderboard(outcome.trials, run_dir)
        write_metrics(run_dir, outcome.final.report)
        if prepared.summary is not None:
            write_run_summary(run_dir, RunSummary(
                domain=plan.domain.name, data=prepared.summary, started=started_at,
                wall_s=round(time.perf_counter() - started, 2), versions=versions(host),
                search={"objective": plan.objective.name, "direction": plan.objective.direction,
                        "families": [f.name for f in plan.families], "n_trials": cfg.search.n_trials,
                        "timeout_s": cfg.search.timeout, "sampler": cfg.search.sampler, "pruner": cfg.search.pruner,
                        "trials_in_study": len(outcome.trials), "trials_new": outcome.n_new,
                        "workers": n_workers, "engine": cfg.trainer.engine, "seed": cfg.seed},
            ))
    result = RunResult(run_dir=run_dir, leaderboard=leaderboard, outcome=outcome, metric=plan.objective.name,
                       cross_validated=bool(prepared.folds))
    final = outcome.final
    shown = ", ".join(f"{m.name} {final.report.test[m.name]:.4f}" for m in plan.metrics[:4]
                      if isinstance(final.report.test.get(m.name), float))
    log.info("%d trials in %s (%d new); best %s %.4f %s (trial %d, %s); test %s", result.n_trials, run_dir,
             outcome.n_new, plan.objective.name, final.value,
             "cross-validated" if prepared.folds else "on validation", final.number, final.family, shown)
    log.info("run finished in %.1f s; load the model with automl.load(%r)", time.perf_counter() - started,
             str(run_dir))
    host.notify("automl_run_finished", result=result)
    return result
