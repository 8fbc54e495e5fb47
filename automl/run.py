"""One run, end to end: resolve the domain, prepare data, search, evaluate the best model once, write results.

```
RunConfig -> domain (+ typed options) -> pipeline.prepare (host process: pandas, scikit-learn)
          -> Optuna study (storage in run_dir) -> trials (in-process or worker processes)
          -> best trial -> test evaluation -> run_dir: leaderboard.csv, metrics.json, predictor/
```
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.config import RunConfig
    from automl.pipeline import Pipeline, Prepared
    from automl.plugins import PluginHost
    from automl.search.workers import WorkerPool
    from automl.specs import DomainSpec, MetricSpec, ModelFamily

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run returns (and what `automl_run_finished` observers receive)."""

    run_dir: Path
    leaderboard: "pd.DataFrame"
    best_params: dict[str, Any]
    best_value: float
    metric: str
    test_metrics: dict[str, Any]
    family: str
    n_trials: int
    #: True when trials were scored by cross-validation (small data) rather than one validation split.
    cross_validated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The saved predictor (same as `automl.load(run_dir)`)."""
        from automl.predictor import load

        return load(self.run_dir)


@dataclass
class Plan:
    """What the search needs to know, resolved and validated before any data is touched twice."""

    domain: "DomainSpec"
    options: Any
    pipeline: "Pipeline"
    objective: "MetricSpec"
    metrics: list["MetricSpec"]
    families: list["ModelFamily"]


def domain_options(domain: "DomainSpec", raw: dict[str, Any]) -> Any:
    """`domain.options` typed by the domain's own dataclass (unknown keys are errors)."""
    if domain.options is None:
        if raw:
            raise ConfigError(f"domain {domain.name!r} takes no options, got domain.options={dict(raw)}")
        return None
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(domain.options), raw or {}))
    except OmegaConfBaseException as exc:
        msg = str(getattr(exc, "msg", exc)).splitlines()[0]
        raise ConfigError(f"domain.options for {domain.name!r}: {msg}") from None


def make_pipeline(domain: "DomainSpec", options: Any) -> "Pipeline":
    if domain.pipeline is None:
        from automl.tabular.pipeline import TabularPipeline

        return TabularPipeline()
    return domain.pipeline(options)


def plan_search(cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec", options: Any, pipeline: "Pipeline",
                info: Any) -> Plan:
    task = info.task
    if task not in domain.metrics:
        raise ConfigError(f"domain {domain.name!r} does not serve {task} tasks (it serves "
                          f"{', '.join(sorted(domain.metrics))})")
    metrics = [host.metrics.get(name) for name in domain.metrics[task]]
    objective_name = cfg.search.metric or domain.metrics[task][0]
    objective = host.metrics.get(objective_name)
    if task not in objective.tasks:
        valid = [m.name for m in host.metrics if task in m.tasks]
        raise ConfigError(f"search.metric={objective_name} does not apply to {task} tasks: use one of "
                          f"{', '.join(valid)}")
    if objective not in metrics:
        metrics.append(objective)

    allowed = [f for f in host.model_families if task in f.tasks]
    if domain.families is not None and not cfg.search.families:
        allowed = [f for f in allowed if f.name in domain.families]
    if cfg.search.families:
        names = {f.name for f in allowed}
        unknown = [n for n in cfg.search.families if n not in names]
        if unknown:
            raise ConfigError(f"search.families names {unknown[0]!r}, which domain {domain.name!r} cannot use for "
                              f"{task} tasks: available are {', '.join(sorted(names)) or 'none'}")
        allowed = [f for f in allowed if f.name in cfg.search.families]
    declined = [f.name for f in allowed if f.accepts is not None and not f.accepts(info)]
    if declined:
        log.info("left out of this search (they decline data of this shape): %s", ", ".join(declined))
        allowed = [f for f in allowed if f.name not in declined]
    if not allowed:
        raise ConfigError(f"no model family can serve {task} tasks in domain {domain.name!r} on this data: install "
                          "a plugin that provides one (`automl plugins` lists the families)")
    return Plan(domain, options, pipeline, objective, metrics, allowed)


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


def run(cfg: "RunConfig", host: Optional["PluginHost"] = None, frame: "pd.DataFrame | None" = None,
        pool: Optional["WorkerPool"] = None) -> RunResult:
    """Run a whole search as configured. The SDK and the CLI both end up here.

    `pool`: a worker process started ahead (the CLI starts one before composing the config); used when the
    run wants workers, closed otherwise.
    """
    from automl.plugins import PluginHost
    from automl.search.study import RunLock

    host = host or PluginHost()
    domain = host.domain(cfg.domain.name)
    options = domain_options(domain, cfg.domain.options)
    pipeline = make_pipeline(domain, options)
    run_dir = resolve_run_dir(cfg)
    started = time.perf_counter()
    with RunLock(run_dir):
        from automl.search.execute import execute_search
        from automl.search.workers import WorkerPool, resolve_workers

        n_workers = resolve_workers(cfg, host)
        if pool is not None and not n_workers:
            pool.close()
            pool = None
        # Started first: its imports (torch, plugins) overlap the data loading below.
        pool = (pool or WorkerPool()).sized(n_workers) if n_workers else None
        try:
            prepared = pipeline.prepare(cfg, host, domain, frame)
            plan = plan_search(cfg, host, domain, options, pipeline, prepared.info)
            outcome = execute_search(cfg, host, plan, prepared, run_dir, pool)
        finally:
            if pool is not None:
                pool.close()
        from automl.artifacts import write_leaderboard, write_metrics

        leaderboard = write_leaderboard(outcome.trials, run_dir)
        write_metrics(run_dir, outcome.test_metrics)
    result = RunResult(
        run_dir=run_dir, leaderboard=leaderboard, best_params=outcome.best_params, best_value=outcome.best_value,
        metric=plan.objective.name, test_metrics=outcome.test_metrics, family=outcome.family,
        n_trials=len(leaderboard), cross_validated=bool(prepared.folds),
    )
    log.info("%d trials in %s (%d new); best %s %.4f %s (trial %d, %s); test %s",
             result.n_trials, run_dir, outcome.n_new, plan.objective.name, outcome.best_value,
             "cross-validated" if prepared.folds else "on validation", outcome.best_number, outcome.family,
             _short(outcome.test_metrics, plan))
    log.info("run finished in %.1f s; load the model with automl.load(%r)", time.perf_counter() - started,
             str(run_dir))
    host.notify("automl_run_finished", result=result)
    return result


def _short(metrics: dict[str, Any], plan: Plan) -> str:
    names = [m.name for m in plan.metrics][:4]
    return ", ".join(f"{n} {metrics[n]:.4f}" for n in names if isinstance(metrics.get(n), float))


def require_completed(trials: list[Any]) -> None:
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in trials):
        from automl.search.study import FAIL_REASON

        reasons = sorted({t.user_attrs.get(FAIL_REASON, t.state.name.lower()) for t in trials})
        raise AutoMLError(f"no trial completed ({len(trials)} ran): {'; '.join(reasons)[:600]}")
