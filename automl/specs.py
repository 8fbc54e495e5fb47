"""The typed, frozen specs that plugins register and the host consumes.

These are the nouns of the plugin contract. Hooks in `automl.hookspecs` return lists of them. Nothing in this
module imports torch, pandas or optuna: plugins are imported when `automl plugins` lists them, and that must
stay fast. Heavy work lives in the callables a spec carries (loaders, search spaces, model builders), which
the host calls only when a run needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping

from automl.pipeline import DataInfo
from automl.tasks import BINARY, MAXIMIZE, MINIMIZE, MULTICLASS, REGRESSION, TABULAR_TASKS

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import optuna
    import pandas as pd
    from torch import nn

    from automl.pipeline import Pipeline

__all__ = ["BINARY", "MAXIMIZE", "MINIMIZE", "MULTICLASS", "REGRESSION", "TABULAR_TASKS", "DataInfo", "DatasetSpec",
           "DomainSpec", "MetricSpec", "ModelFamily"]

_NAME = re.compile(r"^[a-z][a-z0-9_@.\-]*$")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid: use lower-case letters, digits, '_', '-', '.' or '@', "
            "starting with a letter"
        )


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a plugin ships. `loader` must work offline (no downloads at run time).

    `drop_columns` maps each column removed before training to the reason (row numbers, identifiers,
    leakage), so the spec documents itself. `id_columns` are identifiers: dropped and never written to the
    run directory. `sensitive` names attributes for fairness reporting. `group_column` keeps related rows
    (one patient's samples) together in train, validation or test.
    """

    name: str
    loader: Callable[[], "pd.DataFrame"]
    target: str
    description: str = ""
    source: str = ""
    domain: str | None = None
    task: str | None = None
    positive_class: Any = None
    drop_columns: Mapping[str, str] = field(default_factory=dict)
    id_columns: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    #: Rows sharing this column's value stay on one side of every split (e.g. several samples of a patient).
    group_column: str | None = None

    def __post_init__(self) -> None:
        _check_name("dataset", self.name)
        if not callable(self.loader):
            raise TypeError(f"dataset {self.name!r}: loader must be callable, got {type(self.loader).__name__}")


@dataclass(frozen=True)
class MetricSpec:
    """A metric. For tabular tasks `fn(y_true, y_score)` gets numpy arrays: binary y_score is P(positive),
    multiclass an (n, classes) probability matrix, regression the predictions in the target's units.
    Prefer a well-kept implementation (scikit-learn, torchmetrics) inside `fn`, imported lazily.
    """

    name: str
    direction: str
    tasks: frozenset[str]
    fn: Callable[["np.ndarray", "np.ndarray"], float]
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("metric", self.name)
        if self.direction not in (MAXIMIZE, MINIMIZE):
            raise ValueError(f"metric {self.name!r}: direction must be 'maximize' or 'minimize'")
        object.__setattr__(self, "tasks", frozenset(self.tasks))


@dataclass(frozen=True)
class ModelFamily:
    """A family of networks whose architecture is searched.

    `search_space(trial, info)` suggests the architecture, define-by-run; parameter names are namespaced by
    the host (`depth` becomes `mlp.depth`), so families never collide. Training hyperparameters shared by
    every family (learning rate, weight decay, batch size) are suggested by the host.

    Give exactly one of:
    - `network(params, info) -> torch.nn.Module`: a plain network trained with the host's objective for the
      task (cross-entropy / MSE, AdamW), plus `net.penalty()` when the network defines one (a regulariser such
      as a sparsity term). The host wraps it in a `LightningModule` (`automl.training.module`) and its fast
      engine trains it without importing Lightning.
    - `build(params, info) -> lightning.LightningModule`: a module with its own `training_step` and
      `configure_optimizers`, for training logic of your own.
    """

    name: str
    tasks: frozenset[str]
    search_space: Callable[["optuna.Trial", DataInfo], dict]
    network: Callable[[dict, DataInfo], "nn.Module"] | None = None
    build: Callable[[dict, DataInfo], Any] | None = None
    description: str = ""
    #: Optional `accepts(info) -> bool`: False leaves the family out of a study (e.g. too many features).
    accepts: Callable[[DataInfo], bool] | None = None
    #: Optional, for `network=` families built from the host's stacked layers (`automl.tabular.stacked`):
    #: `stack(params_list, info)` returns one model whose members are the configurations, and configurations
    #: whose `stack_key(params)` are equal may share one. The host then trains several trials, and the fold
    #: models of a cross-validated trial, as one model (`search.batch`); `network(params, info)` must be
    #: `stack([params], info)`.
    stack: Callable[[list[dict], DataInfo], "nn.Module"] | None = None
    stack_key: Callable[[dict], Hashable] | None = None
    #: Optional, with `stack=`: the architecture parameters (un-namespaced: `depth`, `width`) that the trials of
    #: one round share, so that they stack without padding: the round's first trial samples them, the others
    #: take its values and sample the rest (learning rate, weight decay, dropout, input transform...). At least
    #: the ones `stack_key` reads; `()` lets each trial sample its own and stack only when they happen to match.
    round_shares: tuple[str, ...] = ()
    #: Optional `portfolio(info) -> [params, ...]`: known-good configurations (a paper's defaults) that a new
    #: study tries first, as full parameter dicts as the search stores them (`mlp.depth`, `lr`, ...).
    portfolio: Callable[[DataInfo], list[dict]] | None = None

    def __post_init__(self) -> None:
        _check_name("model family", self.name)
        object.__setattr__(self, "tasks", frozenset(self.tasks))
        if (self.network is None) == (self.build is None):
            raise ValueError(f"model family {self.name!r}: give exactly one of network= or build=")
        if not callable(self.search_space):
            raise TypeError(f"model family {self.name!r}: search_space must be callable")
        if (self.stack is None) != (self.stack_key is None) or (self.stack is not None and self.network is None):
            raise ValueError(f"model family {self.name!r}: stack= and stack_key= go together, with network=")
        if self.round_shares and self.stack is None:
            raise ValueError(f"model family {self.name!r}: round_shares= needs stack= (only stacked trials share)")

    def create(self, params: dict, info: DataInfo) -> Any:
        """The model for `params`, untrained: the plain network, or the family's own module."""
        return self.network(params, info) if self.network is not None else self.build(params, info)


@dataclass(frozen=True)
class DomainSpec:
    """A business vertical: which tasks it serves, what it reports, which families it may search.

    `metrics` maps each task to the metric names reported; the first is the default objective (override with
    `search.metric=`). `families=None` allows every registered family that supports the task.
    `options` is a dataclass that types `domain.options` from the config; `pipeline(options)` builds the
    data path (an `automl.pipeline.Pipeline`; default: the host's tabular pipeline). `evaluate(evaluation)`
    runs once on the final model (`automl.evaluation.Evaluation`): it may calibrate probabilities, choose a
    decision threshold on the validation rows, add test metrics, intervals and details, and write the
    domain's tables and pictures into the run directory.
    """

    name: str
    metrics: Mapping[str, tuple[str, ...]]
    description: str = ""
    families: tuple[str, ...] | None = None
    default_dataset: str | None = None
    pipeline: Callable[[Any], "Pipeline"] | None = None
    options: type | None = None
    evaluate: Callable[[Any], None] | None = None
    #: What the domain's models are for, and their limits, in the domain's own words: the model card quotes it.
    intended_use: str = ""

    def __post_init__(self) -> None:
        _check_name("domain", self.name)
        if not self.metrics:
            raise ValueError(f"domain {self.name!r}: metrics must name at least one task and its metrics")
        object.__setattr__(self, "metrics", {t: tuple(m) for t, m in self.metrics.items()})

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset(self.metrics)
