"""The Lightning engine: each fit is a lean `lightning.Trainer.fit` (`trainer.engine=lightning`).

The Trainer runs without checkpoint files, loggers, progress bars or model summaries; batches are still
index slices of device-resident tensors (an iterable, not a DataLoader with workers). Pruning is Optuna's
own `PyTorchLightningPruningCallback` (the request's reporter is an Optuna trial's), early stopping
Lightning's `EarlyStopping`, both watching the validation figures `_ValidationObjective` logs each epoch.
Plain networks are wrapped in `NetworkModule`, which trains them with the device data's own loss.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from typing import Any, Iterator, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping

from automl.training.engine import (CHECK_EVERY, Diverged, Engine, EpochJudge, FitRequest, FitResult, all_finite,
                                    snapshot)
from automl.training.module import NetworkModule, unwrap

MONITOR = "val_objective"
STOP_MONITOR = "val_stopping"
#: Lightning announces accelerators and tips on every fit; one study would print thousands of these lines.
_CHATTY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                   "lightning.fabric.utilities.rank_zero")
_KNOWN_WARNINGS = (".*LeafSpec.*", ".*does not have many workers.*", ".*`training_step` returned `None`.*")


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-fit announcements for the duration of one fit, then restore the caller's."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for pattern in _KNOWN_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class _Epochs:
    """A fresh permutation of index-slice batches per epoch, sized for Lightning's progress tracking."""

    def __init__(self, data: Any, rows: Any, batch_size: int, generator: Any, model: Any) -> None:
        self.args = (rows, batch_size, generator, model)
        self.data = data
        self.n = max(1, len(rows) // batch_size + (len(rows) % batch_size >= 2))

    def __iter__(self):
        return iter(self.data.batches(*self.args))

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

    def __init__(self, request: FitRequest, judge: EpochJudge) -> None:
        self.request, self.judge = request, judge
        self.best_state: Optional[dict] = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        r = self.request
        scores = r.data.predict(unwrap(pl_module), r.val, r.trainer.eval_batch_size)
        if not all_finite(scores):
            raise Diverged(f"validation predictions are not finite in epoch {trainer.current_epoch}")
        if self.judge.update(trainer.current_epoch + 1, r.y_val, scores):
            self.best_state = snapshot(pl_module)
        pl_module.log(MONITOR, self.judge.history[-1], prog_bar=False)
        pl_module.log(STOP_MONITOR, self.judge.stops[-1], prog_bar=False)


class _Carried(Exception):
    """An `Interrupted` on its way through Lightning, which would turn a KeyboardInterrupt into sys.exit(1)."""


class _Check(Callback):
    """The request's `check` every few steps: the search's deadline and stop requests, mid-epoch."""

    def __init__(self, request: FitRequest) -> None:
        self.request = request

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.request.check is not None and batch_idx % CHECK_EVERY == 0:
            try:
                self.request.check(trainer.current_epoch + 1, batch_idx, int(trainer.num_training_batches))
            except KeyboardInterrupt as exc:
                raise _Carried() from exc


class _Reporter(Callback):
    """The request's pruning reporter, called after each validation epoch like the fast engine calls it."""

    def __init__(self, request: FitRequest, judge: EpochJudge) -> None:
        self.request, self.judge = request, judge

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.request.report is not None and self.judge.history:
            self.request.report(trainer.current_epoch, self.judge.history[-1])


class LightningEngine(Engine):
    name = "lightning"

    def model(self, family: Any, params: dict[str, Any], info: Any, data: Any, hp: dict[str, Any]) -> Any:
        if family.build is not None:
            return family.build(params, info)
        return NetworkModule(family.network(params, info), lambda net, batch: data.loss(net, batch, hp), hp)

    def network(self, model: Any) -> Any:
        return unwrap(model)

    def fit(self, request: FitRequest) -> FitResult:
        import torch

        r, module, cfg = request, request.model, request.trainer
        start = time.perf_counter()
        device = r.train.device
        generator = torch.Generator(device=device).manual_seed(r.seed)
        judge = EpochJudge(r.objective, r.stopper, cfg.patience)
        val_metric = _ValidationObjective(r, judge)
        clock = StepClock()
        callbacks: list[Callback] = [
            val_metric, _Reporter(r, judge), clock, _Check(r),
            EarlyStopping(STOP_MONITOR, patience=cfg.patience, mode="max" if judge.maximize else "min",
                          check_finite=True),
        ]
        bf16 = device.type == "cuda" and cfg.precision in ("auto", "bf16") and torch.cuda.is_bf16_supported()
        if isinstance(module, NetworkModule):
            # One validation "batch": the rows themselves; a callback scores all of them with the objective.
            val_batches = [r.val]
        else:  # a plugin's own module: its validation_step gets the device data's batches, in order
            ordered = torch.Generator(device=device).manual_seed(0)
            val_batches = list(r.data.batches(r.val, cfg.eval_batch_size, ordered, module))
        with _quiet_lightning():
            trainer = pl.Trainer(
                max_epochs=cfg.max_epochs, accelerator="gpu" if device.type == "cuda" else device.type,
                devices=[device.index or 0] if device.type == "cuda" else 1,
                precision="bf16-mixed" if bf16 else "32-true", logger=False, enable_checkpointing=False,
                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                callbacks=callbacks,
            )
            try:
                trainer.fit(module, train_dataloaders=_Epochs(r.data, r.train, r.hp["batch_size"], generator,
                                                              unwrap(module)),
                            val_dataloaders=_FixedBatches(val_batches))
            except _Carried as exc:
                raise exc.__cause__ from None
        if val_metric.best_state is None:
            raise Diverged("no validation epoch completed")
        best, best_epoch, state = judge.value, judge.best_epoch, val_metric.best_state
        if r.keep_last:
            best, best_epoch, state = judge.history[-1], len(judge.history), snapshot(module)
        if isinstance(module, NetworkModule):  # the network's own weights, as the family names them
            state = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
        return FitResult(best, best_epoch, len(judge.history), state, judge.history,
                         time.perf_counter() - start, clock.compute_s)
