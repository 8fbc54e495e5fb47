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
    def ensemble(self) -> Optional[dict[str, Any]]:
        """The final model's members and their weights when it is an ensemble (metrics.json `ensemble`)."""
        return self.outcome.final.report.ensemble

    @property
    def n_trials(self) -> int:
        return len(self.leaderboard)

    def load(self) -> Any:
        """The saved predictor (same as `automl.load(run_dir)`)."""
        from automl.predictor import load

        return load(self.run_dir)


#: Seconds report.html takes at the end of a run (about 4 to 10 here): a run with a time budget writes it only
#: when that much is left.
REPORT_S = 8


def search_deadline(cfg: "RunConfig", started: float) -> Optional[float]:
    """When trials must stop (a `time.time()`), so that the whole run ends within `search.timeout`: the search
    gets the budget less a reserve for the final model, its evaluation and the files (`final_reserve`)."""
    from automl.search.context import final_reserve

    if cfg.search.timeout is None:
        return None
    budget = float(cfg.search.timeout)
    return time.time() - (time.perf_counter() - started) + budget - final_reserve(budget)


def record_config(cfg: "RunConfig", run_dir: Path) -> None:
    """`.hydra/config.yaml` as the command line records it, for runs started from Python too: `automl report`
    re-derives a run's test rows from it. A storage URL's password is not written."""
    path = run_dir / ".hydra" / "config.yaml"
    if path.exists():
        return
    from omegaconf import OmegaConf

    from automl.search.study import redact

    path.parent.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    path.write_text(redact(text, cfg.search.storage) if cfg.search.storage else text)


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
    run wants workers, closed otherwise. Ctrl-C or SIGTERM stops the search: the files are written from the
    trials that finished, then `automl.errors.Interrupted` is raised (a second Ctrl-C leaves at once).
    """
    from automl.plan import resolve
    from automl.search.study import RunLock
    from automl.search.worker_handle import WorkerHandle, resolve_workers
    from automl.stopping import StopRequest, StopSignals

    resolution = resolve(cfg, host)
    run_dir = resolve_run_dir(cfg)
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    stop = StopRequest()
    with StopSignals(stop) as signals, RunLock(run_dir):
        if frame is None:  # a DataFrame's rows are not in any config: nothing to re-derive them from
            record_config(cfg, run_dir)
        n_workers = resolve_workers(cfg, host)
        if workers is not None and not n_workers:
            workers.close()
            workers = None
        # Started first: its imports (torch, plugins) overlap the data loading below.
        workers = (workers or WorkerHandle()).sized(n_workers) if n_workers else None
        if workers is not None:
            signals.forward, signals.force = workers.request_stop, workers.kill
        try:
            prepared = resolution.prepare(cfg, host, frame)
            plan = resolution.plan(cfg, host, prepared.info)
            outcome = _search(cfg, host, plan, prepared, run_dir, workers, search_deadline(cfg, started), stop)
        finally:
            if workers is not None:
                workers.close()
        result = _write(cfg, host, plan, prepared, run_dir, outcome, started, started_at)
    if outcome.final is not None and cfg.report:
        left = None if cfg.search.timeout is None else cfg.search.timeout - (time.perf_counter() - started)
        if left is not None and left < REPORT_S:
            log.info("report.html left out: search.timeout leaves %.1f s (it takes about %d s); `automl report %s` "
                     "writes it", max(left, 0.0), REPORT_S, run_dir)
        else:
            from automl.report.build import write_report_safely

            write_report_safely(run_dir, host=host, config=cfg, frame=frame)  # a view of the files above
    if outcome.interrupted or stop:
        from automl.errors import Interrupted

        reason, code = (stop.reason, stop.exit_code) if stop else (outcome.interrupted, outcome.exit_code)
        done = "the files are written from the trials that finished" if outcome.final is not None else \
            "no trial had finished, so there is no model yet"
        raise Interrupted(f"{reason} after {outcome.n_new} new trial(s) in {run_dir}: {done}. Run the same command "
                          "again to finish the run", code)
    if outcome.final is None:  # a worker died before any trial finished
        from automl.errors import AutoMLError

        raise AutoMLError(f"{'; '.join(outcome.problems)}; no trial had finished: run the same command again")
    host.notify("automl_run_finished", result=result)
    return result


def _search(cfg: "RunConfig", host: "PluginHost", plan: Any, prepared: Any, run_dir: Path,
            workers: Optional["WorkerHandle"], deadline: Optional[float], stop: Any) -> "SearchOutcome":
    from automl.search.execute import execute_search

    return execute_search(cfg, host, plan, prepared, run_dir, workers, deadline, stop)


def _write(cfg: "RunConfig", host: "PluginHost", plan: Any, prepared: Any, run_dir: Path,
           outcome: "SearchOutcome", started: float, started_at: str) -> Optional[RunResult]:
    """The run's files from the search's outcome: the leaderboard always (no trial is left `running` in it),
    the rest when there is a final model."""
    from automl.artifacts import versions, write_leaderboard, write_metrics, write_run_summary
    from automl.card import write_model_card
    from automl.records import RunSummary

    final = outcome.final
    weights = {m["trial"]: m["weight"] for m in final.report.model.get("members", [])} if final else {}
    requirements = plan.requirements
    pareto = (final.report.constraints or {}) if final else {}
    leaderboard = write_leaderboard(outcome.trials, run_dir, weights,
                                    requirements.objectives if requirements and requirements.multi else None,
                                    pareto.get("pareto_front"))
    if final is None:
        return None
    write_metrics(run_dir, final.report)
    if prepared.summary is not None:
        write_run_summary(run_dir, RunSummary(
            domain=plan.domain.name, data=prepared.summary, started=started_at,
            wall_s=round(time.perf_counter() - started, 2), versions=versions(host),
            search={"objective": plan.objective.name, "direction": plan.objective.direction,
                    "families": [f.name for f in plan.families], "n_trials": cfg.search.n_trials,
                    "timeout_s": cfg.search.timeout, "sampler": cfg.search.sampler, "pruner": cfg.search.pruner,
                    "trials_in_study": len(outcome.trials), "trials_new": outcome.n_new,
                    "interrupted": outcome.interrupted, "problems": outcome.problems, "lost_trials": outcome.lost,
                    "workers": workers_used(cfg, host), "engine": cfg.trainer.engine, "seed": cfg.seed},
        ))
    write_model_card(run_dir, host)  # reads what was just written: run.json, metrics.json, predictor/
    result = RunResult(run_dir=run_dir, leaderboard=leaderboard, outcome=outcome, metric=plan.objective.name,
                       cross_validated=bool(prepared.folds))
    shown = ", ".join(f"{m.name} {final.report.test[m.name]:.4f}" for m in plan.metrics[:4]
                      if isinstance(final.report.test.get(m.name), float))
    log.info("%d trials in %s (%d new); best %s %.4f %s (trial %d, %s); test %s", result.n_trials, run_dir,
             outcome.n_new, plan.objective.name, final.value,
             "cross-validated" if prepared.folds else "on validation", final.number, final.family, shown)
    for problem in outcome.problems:
        log.error("%s", problem)
    log.info("run finished in %.1f s; load the model with automl.load(%r)", time.perf_counter() - started,
             str(run_dir))
    return result


def workers_used(cfg: "RunConfig", host: "PluginHost") -> int:
    from automl.search.worker_handle import resolve_workers

    return resolve_workers(cfg, host)
