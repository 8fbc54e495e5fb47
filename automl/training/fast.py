"""The fast engine: a lean training loop over device-resident tensors (`trainer.engine=fast`, the default).

It trains either a plain network with the device data's loss (families that give `network=`) or a
`LightningModule` through its own hooks (`training_step`, `configure_optimizers`): the same contract Lightning
uses, without the Trainer's per-step machinery, which dominates the cost of small tabular models (about
1 ms per step here, more than the model's own maths). Batches are index slices of a permutation; validation
runs in large batches once per epoch; the best epoch's weights are kept in memory (no checkpoint files).

The engine knows nothing of Optuna: pruning reaches it through `FitRequest.report`, which raises `Pruned`.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Optional

from automl.training.device import autocast_context
from automl.training.engine import (CHECK_EVERY, Diverged, Engine, EpochJudge, FitRequest, FitResult, all_finite,
                                    make_optimizer, snapshot)


def is_lightning_module(obj: Any) -> bool:
    """True for a LightningModule, without importing Lightning when nothing has."""
    mod = sys.modules.get("lightning.pytorch")
    return mod is not None and isinstance(obj, mod.LightningModule)


def lightning_optimizer(module: Any) -> tuple[Any, Optional[Any]]:
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


def training_loss(model: Any, data: Any, batch: Any, index: int, hp: dict[str, Any]) -> Any:
    """One batch's loss: a LightningModule's own `training_step`, or the device data's loss of a network."""
    if is_lightning_module(model):
        out = model.training_step(batch, index)
        return out["loss"] if isinstance(out, dict) else out
    return data.loss(model, batch, hp)


class FastEngine(Engine):
    name = "fast"
    stacks = True  # its stackable families train through the vectorised engine, several at once

    def prepare_process(self, families: list[Any]) -> None:
        if any(f.build is not None for f in families):
            import lightning.pytorch  # noqa: F401 - once, before a worker forks, not once per sibling
        if any(f.stack is None for f in families):
            # torch.optim's first step imports torch._dynamo (about a second): once, before forking. A search of
            # stacked families only never pays it: the vectorised engine's AdamW is its own.
            import torch._dynamo  # noqa: F401

    def fit(self, request: FitRequest) -> FitResult:
        """Train with early stopping (see `EpochJudge`); return the best epoch's weights (the last epoch's
        with `keep_last`, for a refit whose epoch count was chosen beforehand)."""
        import torch

        if request.privacy is not None:  # DP-SGD: Poisson batches, per-row clipping and noise (Opacus)
            from automl.training.private import fit_private

            return fit_private(request)
        r, model, trainer = request, request.model, request.trainer
        start = time.perf_counter()
        device = r.train.device
        model.to(device)
        if is_lightning_module(model):
            opt, scheduler = lightning_optimizer(model)
        else:
            opt, scheduler = make_optimizer(model.parameters(), r.hp), None
        generator = torch.Generator(device=device).manual_seed(r.seed)
        judge, best_state, compute_s = EpochJudge(r.objective, r.stopper, trainer.patience), None, 0.0
        amp = autocast_context(device, str(trainer.precision))
        clock = time.perf_counter

        steps = -(-int(r.train.shape[0]) // int(r.hp["batch_size"]))
        for epoch in range(1, trainer.max_epochs + 1):
            model.train()
            total = torch.zeros((), device=device)
            for i, batch in enumerate(r.data.batches(r.train, r.hp["batch_size"], generator, model)):
                if r.check is not None and i % CHECK_EVERY == 0:
                    r.check(epoch, i, steps)
                t0 = clock()
                with amp:
                    loss = training_loss(model, r.data, batch, i, r.hp)
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
            scores = r.data.predict(model, r.val, trainer.eval_batch_size)
            if not all_finite(scores):
                raise Diverged(f"validation predictions are not finite in epoch {epoch}")
            if judge.update(epoch, r.y_val, scores):
                best_state = snapshot(model)
            if r.report is not None:
                r.report(epoch - 1, judge.history[-1])  # 0-based, as Lightning's epochs (and Optuna's) count
            if judge.done:
                break
        best, best_epoch, history = judge.value, judge.best_epoch, judge.history
        if r.keep_last:
            best, best_epoch, best_state = history[-1], len(history), snapshot(model)
        assert best_state is not None
        return FitResult(best, best_epoch, len(history), best_state, history, clock() - start, compute_s)
