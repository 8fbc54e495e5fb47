"""The run configuration, typed once at the boundary.

Hydra composes `conf/config.yaml` with the domain's YAML and the user's overrides; `RunConfig.from_container`
turns the result into these dataclasses (unknown keys and wrong types become a one-line `ConfigError`) and
`validate` checks the values. From there on the run passes objects, never dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

from automl.errors import ConfigError

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
ENGINES = ("fast", "lightning")
PRECISIONS = ("auto", "32", "bf16")


@dataclass
class DomainConfig:
    name: str = "tabular"
    #: auto | binary | multiclass | regression (or a task a plugin's pipeline defines).
    task: str = "auto"
    #: Domain-specific options, typed by the domain's own options dataclass.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    path: Optional[str] = None
    target: Optional[str] = None
    positive_class: Optional[str] = None
    drop_columns: list[str] = field(default_factory=list)
    id_columns: list[str] = field(default_factory=list)
    sensitive: Optional[str] = None
    #: Keep sensitive attributes among the model's features (they are reported on either way).
    sensitive_is_feature: bool = False
    #: Rows sharing a value here (a patient, a customer) stay on one side of every split; not a feature.
    group_column: Optional[str] = None
    test_size: float = 0.2
    val_size: float = 0.2


@dataclass
class CVConfig:
    #: Score trials by repeated stratified k-fold on train+validation when the data has fewer rows than this.
    below_rows: int = 2000
    folds: int = 5
    repeats: int = 1


@dataclass
class SearchConfig:
    n_trials: Optional[int] = 20
    timeout: Optional[float] = None
    metric: Optional[str] = None
    sampler: str = "tpe"
    pruner: str = "median"
    storage: Optional[str] = None
    study_name: str = "automl"
    families: Optional[list[str]] = None
    #: Worker processes sharing the study; null = one per CPU core (CPU) or per GPU slot; 0 = in-process.
    n_workers: Optional[int] = None
    cv: CVConfig = field(default_factory=CVConfig)


@dataclass
class TrainerConfig:
    engine: str = "fast"
    max_epochs: int = 20
    patience: int = 5
    #: Early stopping and the best epoch are judged on: auto (the pipeline's proper scoring rule, log loss for
    #: classification), objective (the search's metric), or any metric name.
    stop_on: str = "auto"
    accelerator: str = "auto"
    precision: str = "auto"
    eval_batch_size: int = 8192
    threads: Optional[int] = None


@dataclass
class RunConfig:
    domain: DomainConfig = field(default_factory=DomainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    dataset: Optional[str] = None
    run_dir: Optional[str] = None
    seed: int = 0
    debug: bool = False

    @classmethod
    def from_container(cls, container: Any) -> "RunConfig":
        """Build from a DictConfig or plain dict; unknown keys and bad types raise `ConfigError`."""
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        schema = OmegaConf.structured(cls)
        try:
            if not OmegaConf.is_config(container):
                container = OmegaConf.create(container)
            merged = OmegaConf.merge(schema, container)
            cfg = OmegaConf.to_object(merged)
        except OmegaConfBaseException as exc:
            raise ConfigError(_omegaconf_message(exc)) from None
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
            if value not in allowed:
                raise ConfigError(f"{key}={value!r} is not valid: use one of {', '.join(allowed)}")

        s, t, d = self.search, self.trainer, self.data
        one_of("search.sampler", s.sampler, SAMPLERS)
        one_of("search.pruner", s.pruner, PRUNERS)
        one_of("trainer.engine", t.engine, ENGINES)
        one_of("trainer.precision", str(t.precision), PRECISIONS)
        if s.n_trials is None and s.timeout is None:
            raise ConfigError("the search has no budget: set search.n_trials=N or search.timeout=SECONDS")
        if s.n_trials is not None and s.n_trials < 1:
            raise ConfigError(f"search.n_trials={s.n_trials} must be at least 1")
        if s.timeout is not None and s.timeout <= 0:
            raise ConfigError(f"search.timeout={s.timeout} must be a positive number of seconds")
        if s.n_workers is not None and s.n_workers < 0:
            raise ConfigError(f"search.n_workers={s.n_workers} must be 0 (in-process) or more")
        if s.cv.folds < 2 or s.cv.repeats < 1:
            raise ConfigError("search.cv.folds must be at least 2 and search.cv.repeats at least 1")
        if t.max_epochs < 1 or t.patience < 1:
            raise ConfigError("trainer.max_epochs and trainer.patience must be at least 1")
        for key, value in (("data.test_size", d.test_size), ("data.val_size", d.val_size)):
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{key}={value} must be a fraction between 0 and 1")


def _omegaconf_message(exc: Exception) -> str:
    """OmegaConf errors carry a multi-line report; keep what the user needs: the key and the problem."""
    key = getattr(exc, "full_key", None)
    msg = str(getattr(exc, "msg", None) or exc).splitlines()[0]
    if "not in struct" in msg or "Key '" in msg and "not in" in msg:
        top = [f.name for f in fields(RunConfig)]
        return f"unknown config key {key!r}: known top-level keys are {', '.join(top)} (see `automl --help`)"
    return f"config key {key!r}: {msg}" if key else f"config: {msg}"
