"""The fast engine: a lean training loop over device-resident tensors.

It trains either a plain network with the pipeline's objective (families that give `network=`) or a
`LightningModule` through its own hooks (`training_step`, `configure_optimizers`): the same contract Lightning
uses, without the Trainer's per-step machinery, which dominates the cost of small tabular models (about
1 ms per step here, more than the model's own maths). Batches are index slices of a permutation; validation
runs in large batches once per epoch; the best epoch's weights are kept in memory (no checkpoint files).

The engine knows nothing of Optuna: pruning reaches it through `report(step, value)`, which raises
`Pruned` to stop a trial.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from automl.config import TrainerConfig
    from automl.pipeline import Pipeline
    from automl.specs import MetricSpec


class Pruned(Exception):
    """Raised by a reporter to stop an unpromising trial."""


class Diverged(Exception):
    """Training produced a non-finite loss or prediction."""


@dataclass
class FitResult:
    value: float
    best_epoch: int
    epochs: int
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


def is_lightning_module(obj: Any) -> bool:
    """True for a LightningModule, without importing Lightning when nothing has."""
    mod = sys.modules.get("lightning.pytorch")
    return mod is not None and isinstance(obj, mod.LightningModule)


def unwrap(model: Any) -> Any:
    """The network inside the host's NetworkModule (pipelines predict with their own networks)."""
    mod = sys.modules.get("automl.training.module")
    return mod.unwrap(model) if mod is not None else model


def make_optimizer(parameters: Any, hp: dict[str, Any]) -> "torch.optim.Optimizer":
    """The host's optimiser for networks (shared with `TabularModule.configure_optimizers`)."""
    import torch

    return torch.optim.AdamW(parameters, lr=hp["lr"], weight_decay=hp.get("weight_decay", 0.0))


def lightning_optimizer(module: Any) -> tuple["torch.optim.Optimizer", Optional[Any]]:
    """Normalise the forms `configure_optimizers` may return to (optimizer, epoch-level scheduler)."""
    conf = module.configure_optimizers()
    scheduler = None
    if isinstance(conf, dict):
        opt, sched = conf["optimizer"], conf.get("lr_scheduler")
        scheduler = sched.get("scheduler") if isinstance(sched, dict) else sched
    elif isinstance(conf, (list, tuple)) and len(conf) == 2 and isinstance(conf[0], (list, tuple)):
        opt, scheduler = conf[0][0], (conf[1][0] if conf[1] else None)
    elif isinstance(conf, (list, tuple)):
        opt = conf[0]
    else:
        opt = conf
    return opt, scheduler


def autocast_context(device: "torch.device", precision: str) -> Any:
    """bf16 autocast on GPUs that support it (precision auto or bf16); full precision otherwise."""
    import contextlib

    import torch

    if device.type == "cuda" and precision in ("auto", "bf16") and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fit(
    model: Any,
    pipeline: "Pipeline",
    data: dict[str, "torch.Tensor"],
    train_rows: "torch.Tensor",
    val_rows: "torch.Tensor",
    y_val: "np.ndarray",
    hp: dict[str, Any],
    trainer: "TrainerConfig",
    objective: "MetricSpec",
    seed: int,
    report: Optional[Callable[[int, float], None]] = None,
    keep_last: bool = False,
    stopper: "Optional[MetricSpec]" = None,
) -> FitResult:
    """Train with early stopping (see `EpochJudge`); return the best epoch's weights (the last epoch's with
    `keep_last`, for a refit whose epoch count was chosen beforehand)."""
    import torch

    start = time.perf_counter()
    device = train_rows.device
    lightning = is_lightning_module(model)
    model.to(device)
    if lightning:
        opt, scheduler = lightning_optimizer(model)
    else:
        opt, scheduler = make_optimizer(model.parameters(), hp), None
    generator = torch.Generator(device=device).manual_seed(seed)
    judge, best_state, compute_s = EpochJudge(objective, stopper, trainer.patience), None, 0.0
    amp = autocast_context(device, str(trainer.precision))
    clock = time.perf_counter

    for epoch in range(1, trainer.max_epochs + 1):
        model.train()
        total = torch.zeros((), device=device)
        for i, batch in enumerate(pipeline.train_batches(data, train_rows, hp["batch_size"], generator, model)):
            t0 = clock()
            with amp:
                if lightning:
                    out = model.training_step(batch, i)
                    loss = out["loss"] if isinstance(out, dict) else out
                else:
                    loss = pipeline.loss(model, batch, hp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            compute_s += clock() - t0
            total += loss.detach()
        if scheduler is not None:
            scheduler.step()
        if not math.isfinite(float(total)):  # one sync per epoch, not per step
            raise Diverged(f"training loss became {float(total)} in epoch {epoch}")
        # Full precision for the objective: bf16 speeds training up but must not move model selection.
        scores = pipeline.predict(model, data, val_rows, trainer.eval_batch_size)
        if not _finite(scores):
            raise Diverged(f"validation predictions are not finite in epoch {epoch}")
        if judge.update(epoch, y_val, scores):
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if report is not None:
            report(epoch - 1, judge.history[-1])  # 0-based, as Lightning's epochs (and Optuna's callback) count
        if judge.done:
            break
    best, best_epoch, history = judge.value, judge.best_epoch, judge.history
    if keep_last:
        best, best_epoch = history[-1], len(history)
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    return FitResult(best, best_epoch, len(history), best_state, history, clock() - start, compute_s)


def _finite(scores: "np.ndarray") -> bool:
    import numpy as np

    return bool(np.isfinite(scores).all())
