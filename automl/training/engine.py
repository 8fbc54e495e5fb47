"""The engine interface: what trains one model, and the types every engine shares.

An `Engine` turns a `FitRequest` (a model, the device data, training and validation rows, hyperparameters,
the trainer settings) into a `FitResult` (the validation objective at the kept epoch, that epoch's weights,
timings). Two implementations ship with the host, chosen by `trainer.engine`:

- `fast` (`automl.training.fast.FastEngine`): a lean loop over device-resident tensors;
- `lightning` (`automl.training.lightning_engine.LightningEngine`): a lean `lightning.Trainer` per fit.

Both judge epochs the same way (`EpochJudge`), report each epoch to a pruning callback that raises
`Pruned`, and return the network's own weights, named as `ModelFamily.create` names them, so a fit's
result loads into a fresh model whichever engine trained it.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from automl.config import TrainerConfig
    from automl.pipeline import DataInfo, DeviceData
    from automl.specs import MetricSpec, ModelFamily


class Pruned(Exception):
    """Raised by a reporter to stop an unpromising trial."""


class Diverged(Exception):
    """Training produced a non-finite loss or prediction."""


@dataclass
class FitRequest:
    """One fit: the model to train (from `Engine.model`), where its data lives and how to judge it."""

    model: Any
    data: "DeviceData"
    train: "torch.Tensor"
    val: "torch.Tensor"
    y_val: "np.ndarray"
    hp: dict[str, Any]
    trainer: "TrainerConfig"
    objective: "MetricSpec"
    seed: int
    #: What early stopping watches; None: the objective.
    stopper: Optional["MetricSpec"] = None
    #: Called as `report(epoch_index, objective)` after each epoch; raises `Pruned` to stop the fit.
    report: Optional[Callable[[int, float], None]] = None
    #: Keep the last epoch's weights (a refit whose epoch count was chosen beforehand) instead of the best.
    keep_last: bool = False
    #: Called as `check(epoch, step, steps)` every `CHECK_EVERY` training steps: raises `Pruned` at the search's
    #: deadline or `automl.errors.Interrupted` on a stop request, and reports progress within long epochs.
    check: Optional[Callable[[int, int, int], None]] = None
    #: Train with DP-SGD to this (epsilon, delta) (`automl.training.private.Privacy`); None: no privacy.
    privacy: Optional[Any] = None


#: Training steps between two `FitRequest.check` calls (a call costs microseconds, a step about a millisecond).
CHECK_EVERY = 8


@dataclass
class FitResult:
    value: float
    best_epoch: int
    epochs: int
    #: The kept epoch's weights, as the network of `ModelFamily.create` names them.
    state_dict: dict[str, "torch.Tensor"]
    history: list[float] = field(default_factory=list)
    #: Wall seconds of the whole fit and of forward + backward + optimiser steps alone (CPU timings).
    fit_s: float = 0.0
    compute_s: float = 0.0


class EpochJudge:
    """Early stopping and the best epoch, judged on a stopping metric; the trial is scored by the objective.

    The stopping metric is a proper scoring rule by default (validation log loss for classification, see
    `Pipeline.stopping_metric`): ROC AUC on a small validation split plateaus within a few epochs, and a
    network stopped there is undertrained. The trial's value is the objective at the epoch the stopping
    metric chose.
    """

    def __init__(self, objective: "MetricSpec", stopper: "Optional[MetricSpec]", patience: int) -> None:
        self.objective, self.stopper, self.patience = objective, stopper or objective, patience
        self.maximize = self.stopper.direction == "maximize"
        self.best_stop = -math.inf if self.maximize else math.inf
        self.value = math.nan
        self.best_epoch, self.stale = 0, 0
        self.history: list[float] = []  # the objective, per epoch
        self.stops: list[float] = []  # the stopping metric, per epoch

    def update(self, epoch: int, y: "np.ndarray", scores: "np.ndarray") -> bool:
        """Score one epoch; True when it is the best so far."""
        value = float(self.objective.fn(y, scores))
        stop = value if self.stopper is self.objective else float(self.stopper.fn(y, scores))
        for name, v in ((self.objective.name, value), (self.stopper.name, stop)):
            if math.isnan(v):
                raise Diverged(f"validation {name} is NaN in epoch {epoch}")
        self.history.append(value)
        self.stops.append(stop)
        if (stop > self.best_stop) if self.maximize else (stop < self.best_stop):
            self.best_stop, self.value, self.best_epoch, self.stale = stop, value, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def done(self) -> bool:
        return self.stale >= self.patience


class Engine(ABC):
    """Trains one model per `fit`. Subclasses may wrap a family's network (`model`) for their own loop."""

    #: The `trainer.engine` value that selects this engine.
    name: str = "abstract"
    #: Whether families that stack (`ModelFamily.stack`) train several configurations as one model with this
    #: engine (`automl.training.vectorised`); otherwise every configuration trains alone through `fit`.
    stacks: bool = False

    def model(self, family: "ModelFamily", params: dict[str, Any], info: "DataInfo", data: "DeviceData",
              hp: dict[str, Any]) -> Any:
        """The trainable model for one configuration (default: what the family creates)."""
        return family.create(params, info)

    def network(self, model: Any) -> Any:
        """The module that predicts and whose weights `fit` returns (the model itself by default)."""
        return model

    def prepare_process(self, families: list["ModelFamily"]) -> None:
        """Imports a worker should pay once, before it forks its siblings (default: none)."""

    @abstractmethod
    def fit(self, request: FitRequest) -> FitResult:
        """Train with early stopping; return the kept epoch's weights and the objective there."""


#: `trainer.engine` -> the engine's module and class, imported only when chosen.
_ENGINES = {"fast": ("automl.training.fast", "FastEngine"),
            "lightning": ("automl.training.lightning_engine", "LightningEngine")}


def engine_names() -> tuple[str, ...]:
    return tuple(_ENGINES)


def make_engine(name: str) -> Engine:
    module, cls = _ENGINES[name]
    return getattr(importlib.import_module(module), cls)()


# -- helpers the engines share ------------------------------------------------------------------------------


def make_optimizer(parameters: Any, hp: dict[str, Any]) -> "torch.optim.Optimizer":
    """The host's optimiser for networks (shared with `NetworkModule.configure_optimizers`)."""
    import torch

    return torch.optim.AdamW(parameters, lr=hp["lr"], weight_decay=hp.get("weight_decay", 0.0))


def all_finite(scores: "np.ndarray") -> bool:
    import numpy as np

    return bool(np.isfinite(scores).all())


def snapshot(module: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    """A detached copy of a module's weights (the best epoch's, kept in memory: no checkpoint files)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run with `n` torch threads (None: leave as is), restoring the caller's setting afterwards."""
    import torch

    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
