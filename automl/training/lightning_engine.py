"""The Lightning engine: each trial is a lean `lightning.Trainer.fit`.

Chosen with `trainer.engine=lightning`. The Trainer runs without checkpoint files, loggers, progress bars or
model summaries; batches are still index slices of device-resident tensors (an iterable, not a DataLoader
with workers). Pruning is Optuna's own `PyTorchLightningPruningCallback`, early stopping Lightning's
`EarlyStopping`, both watching the validation objective that `_ValidationObjective` logs each epoch.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import TYPE_CHECKING, Any, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping

from automl.training.fast import Diverged, EpochJudge, FitResult
from automl.training.module import NetworkModule, unwrap

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import torch

    from automl.config import TrainerConfig
    from automl.pipeline import Pipeline
    from automl.specs import MetricSpec

MONITOR = "val_objective"
STOP_MONITOR = "val_stopping"

# Lightning announces accelerators and tips on every fit; one study prints thousands of these lines.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
              "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*`training_step` returned `None`.*")


class _Epochs:
    """A fresh permutation of index-slice batches per epoch, sized for Lightning's progress tracking."""

    def __init__(self, pipeline: "Pipeline", data: dict, rows: "torch.Tensor", batch_size: int,
                 generator: "torch.Generator", model: Any) -> None:
        self.args = (data, rows, batch_size, generator, model)
        self.pipeline = pipeline
        self.n = max(1, len(rows) // batch_size + (len(rows) % batch_size >= 2))

    def __iter__(self):
        return iter(self.pipeline.train_batches(*self.args))

    def __len__(self) -> int:
        return self.n


class _FixedBatches:
    """One loader's batches (a bare list would read as one loader per item)."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StepClock(Callback):
    """Seconds inside forward, backward and the optimiser step, for the per-trial overhead figure.

    Lightning has no hook right before `training_step`, so each step is timed from `on_train_batch_start` to
    `on_after_backward` plus from `on_before_optimizer_step` to `on_train_batch_end`: a little of
    Lightning's own per-step work is counted as compute, so the overhead it yields is a lower bound.
    """

    def __init__(self) -> None:
        self.compute_s = 0.0
        self._t = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        self._t = time.perf_counter()

    def on_after_backward(self, *args: Any) -> None:
        self.compute_s += time.perf_counter() - self._t

    def on_before_optimizer_step(self, *args: Any) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        self.compute_s += time.perf_counter() - self._t


class _ValidationObjective(Callback):
    """Scores all validation rows each epoch: logs the objective (for Optuna's pruning callback) and the
    stopping metric (for Lightning's EarlyStopping), and keeps the best epoch's weights (`EpochJudge`)."""

    def __init__(self, pipeline: "Pipeline", data: dict, rows: "torch.Tensor", y: "np.ndarray",
                 judge: EpochJudge, batch_size: int) -> None:
        self.pipeline, self.data, self.rows, self.y = pipeline, data, rows, y
        self.judge, self.batch_size = judge, batch_size
        self.best_state: Optional[dict] = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import numpy as np

        scores = self.pipeline.predict(unwrap(pl_module), self.data, self.rows, self.batch_size)
        if not np.isfinite(scores).all():
            raise Diverged(f"validation predictions are not finite in epoch {trainer.current_epoch}")
        if self.judge.update(trainer.current_epoch + 1, self.y, scores):
            self.best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        pl_module.log(MONITOR, self.judge.history[-1], prog_bar=False)
        pl_module.log(STOP_MONITOR, self.judge.stops[-1], prog_bar=False)


def fit_lightning(
    module: pl.LightningModule,
    pipeline: "Pipeline",
    data: dict[str, "torch.Tensor"],
    train_rows: "torch.Tensor",
    val_rows: "torch.Tensor",
    y_val: "np.ndarray",
    hp: dict[str, Any],
    trainer_cfg: "TrainerConfig",
    objective: "MetricSpec",
    seed: int,
    trial: "Optional[optuna.Trial]" = None,
    keep_last: bool = False,
    stopper: "Optional[MetricSpec]" = None,
) -> FitResult:
    import torch

    start = time.perf_counter()
    device = train_rows.device
    generator = torch.Generator(device=device).manual_seed(seed)
    judge = EpochJudge(objective, stopper, trainer_cfg.patience)
    val_metric = _ValidationObjective(pipeline, data, val_rows, y_val, judge, trainer_cfg.eval_batch_size)
    mode = "max" if judge.maximize else "min"
    clock = StepClock()
    callbacks: list[Callback] = [
        val_metric, EarlyStopping(STOP_MONITOR, patience=trainer_cfg.patience, mode=mode, check_finite=True), clock,
    ]
    if trial is not None:
        from optuna_integration import PyTorchLightningPruningCallback

        callbacks.append(PyTorchLightningPruningCallback(trial, monitor=MONITOR))
    bf16 = device.type == "cuda" and trainer_cfg.precision in ("auto", "bf16") and torch.cuda.is_bf16_supported()
    trainer = pl.Trainer(
        max_epochs=trainer_cfg.max_epochs, accelerator="gpu" if device.type == "cuda" else device.type,
        devices=[device.index or 0] if device.type == "cuda" else 1,
        precision="bf16-mixed" if bf16 else "32-true", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=callbacks,
    )
    if isinstance(module, NetworkModule):
        # One validation "batch": the rows themselves; a callback scores all of them with the objective.
        val_batches = [val_rows]
    else:  # a plugin's own module: its validation_step gets the pipeline's batches, in order
        ordered = torch.Generator(device=device).manual_seed(0)
        val_batches = list(pipeline.train_batches(data, val_rows, trainer_cfg.eval_batch_size, ordered, module))
    trainer.fit(module, train_dataloaders=_Epochs(pipeline, data, train_rows, hp["batch_size"], generator,
                                                  unwrap(module)),
                val_dataloaders=_FixedBatches(val_batches))
    if val_metric.best_state is None:
        raise Diverged("no validation epoch completed")
    best, best_epoch, state = judge.value, judge.best_epoch, val_metric.best_state
    if keep_last:
        best, best_epoch = judge.history[-1], len(judge.history)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return FitResult(best, best_epoch, len(judge.history), state, judge.history,
                     time.perf_counter() - start, clock.compute_s)
