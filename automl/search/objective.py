"""What one trial does: pick a family, sample its architecture and the training hyperparameters, train,
return the validation objective. Built once per process as a `SearchContext`, called once per trial.

The family is itself a searched (categorical) parameter, so every architecture competes in one study.
Family parameters are namespaced (`mlp.depth`), training parameters are shared (`lr`, `batch_size`).
What a trial stores is a `TrialRecord`; a trial that raises or diverges is recorded as failed with its
reason and the study goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from automl.records import TrialRecord
from automl.training.engine import Diverged, FitRequest, FitResult, Pruned

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import torch

    from automl.config import RunConfig, TrainerConfig
    from automl.host import PluginHost
    from automl.pipeline import DeviceData, Prepared
    from automl.plan import Plan
    from automl.specs import ModelFamily
    from automl.training.engine import Engine

log = logging.getLogger(__name__)

WEIGHTS_DIR = "trials"


class FamilyTrial:
    """The trial as a family sees it: parameter names prefixed with the family's name."""

    def __init__(self, trial: "optuna.Trial", prefix: str) -> None:
        self._trial, self._prefix = trial, prefix

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(f"{self._prefix}.{name}", *args, **kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(f"{self._prefix}.{name}", *args, **kwargs)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._trial.suggest_categorical(f"{self._prefix}.{name}", choices)

    @property
    def number(self) -> int:
        return self._trial.number


@dataclass
class SearchContext:
    """Everything trials need, built once per process: the plan, the engine, the data on the device."""

    cfg: "RunConfig"
    host: "PluginHost"
    plan: "Plan"
    prepared: "Prepared"
    run_dir: Path
    engine: "Engine"
    data: "DeviceData"
    rows: dict[str, "torch.Tensor"] = field(default_factory=dict)
    folds: list[tuple["torch.Tensor", "torch.Tensor", "np.ndarray"]] = field(default_factory=list)
    y_val: Optional["np.ndarray"] = None

    @classmethod
    def build(cls, cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared", run_dir: Path,
              device: "torch.device") -> "SearchContext":
        import torch

        from automl.training.engine import make_engine

        data = plan.pipeline.bind(prepared, device)
        ctx = cls(cfg, host, plan, prepared, run_dir, make_engine(cfg.trainer.engine), data)

        def rows(a: "np.ndarray") -> "torch.Tensor":
            return torch.as_tensor(a, dtype=torch.long, device=device)

        ctx.rows = {"train": rows(prepared.train), "val": rows(prepared.val), "test": rows(prepared.test)}
        ctx.y_val = data.targets(prepared.val)
        for tr, va in prepared.folds or []:
            ctx.folds.append((rows(tr), rows(va), data.targets(va)))
        return ctx

    # -- models ------------------------------------------------------------------------------------------

    def new_model(self, family: "ModelFamily", params: dict[str, Any], hp: dict[str, Any]) -> Any:
        """The trainable model of one configuration, as the engine trains it."""
        return self.engine.model(family, params, self.prepared.info, self.data, hp)

    def fit(self, model: Any, hp: dict[str, Any], seed: int, train: "torch.Tensor", val: "torch.Tensor",
            y_val: "np.ndarray", report: Optional[Callable[[int, float], None]] = None,
            trainer: "Optional[TrainerConfig]" = None, keep_last: bool = False) -> FitResult:
        return self.engine.fit(FitRequest(
            model=model, data=self.data, train=train, val=val, y_val=y_val, hp=hp,
            trainer=trainer or self.cfg.trainer, objective=self.plan.objective, seed=seed,
            stopper=self.plan.stopper, report=report, keep_last=keep_last,
        ))

    def cross_validate(self, family: "ModelFamily", params: dict[str, Any], hp: dict[str, Any], seed: int,
                       on_fold: Optional[Callable[[int, float], None]] = None) -> "CrossValidation":
        """One model per fold (seeded per fold), the fold models and each row's out-of-fold predictions."""
        import numpy as np
        import torch

        cv = CrossValidation()
        total, count = None, np.zeros(len(self.prepared.arrays["y"]))
        for k, (train, val, y_val) in enumerate(self.folds):
            torch.manual_seed(seed * 1000 + k)
            model = self.new_model(family, params, hp)
            result = self.fit(model, hp, seed * 1000 + k, train, val, y_val)
            cv.scores.append(result.value)
            cv.best_epochs.append(result.best_epoch)
            cv.epochs.append(result.epochs)
            net = self.engine.network(model)
            net.load_state_dict(result.state_dict)
            p = self.data.predict(net, val, self.cfg.trainer.eval_batch_size)
            rows = val.cpu().numpy()
            total = np.zeros((len(count), *p.shape[1:])) if total is None else total
            total[rows] += p
            count[rows] += 1
            cv.models.append(net)
            if on_fold is not None:
                on_fold(k, float(np.mean(cv.scores)))
        if total is not None:
            seen = count > 0
            cv.oof_rows = np.flatnonzero(seen)
            cv.oof = total[seen] / count[seen].reshape(-1, *([1] * (total.ndim - 1)))
        return cv


@dataclass
class CrossValidation:
    scores: list[float] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    #: Out-of-fold predictions (averaged over repeats) of the rows in `oof_rows`.
    oof: Optional["np.ndarray"] = None
    oof_rows: Optional["np.ndarray"] = None
    #: The trained fold models (networks).
    models: list[Any] = field(default_factory=list)

    @property
    def median_best_epoch(self) -> int:
        import numpy as np

        return max(1, int(round(float(np.median(self.best_epochs)))))


class Objective:
    """Callable for `study.optimize`."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx

    def __call__(self, trial: "optuna.Trial") -> float:
        import optuna
        import torch

        ctx = self.ctx
        names = [f.name for f in ctx.plan.families]
        name = names[0] if len(names) == 1 else trial.suggest_categorical("family", names)
        family = ctx.plan.family(name)
        info = ctx.prepared.info
        try:
            params = family.search_space(FamilyTrial(trial, family.name), info)
            hp = ctx.plan.pipeline.training_space(trial, info)
            TrialRecord(family=family.name, params=params, hp=hp).save(trial)
            seed = ctx.cfg.seed + trial.number
            if ctx.folds:
                return self._cross_validate(trial, family, params, hp, seed)
            torch.manual_seed(seed)
            model = ctx.new_model(family, params, hp)
            result = ctx.fit(model, hp, seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val, _reporter(trial))
        except (Pruned, optuna.TrialPruned) as exc:
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any failure of a trial is recorded and the study goes on
            return self._fail(trial, exc)
        TrialRecord.note(trial, best_epoch=result.best_epoch, epochs=result.epochs, fit_s=round(result.fit_s, 4),
                         compute_s=round(result.compute_s, 4))
        if self._beats_finished(trial, result.value):  # the final model then needs no refit
            save_weights(ctx.run_dir, trial.number, result.state_dict)
        return result.value

    def _cross_validate(self, trial: "optuna.Trial", family: "ModelFamily", params: dict, hp: dict,
                        seed: int) -> float:
        import numpy as np
        import optuna

        n_folds = len(self.ctx.folds)

        def on_fold(k: int, mean: float) -> None:
            trial.report(mean, k)
            if trial.should_prune():
                TrialRecord.note(trial, epochs=k + 1)
                raise optuna.TrialPruned(f"pruned after fold {k + 1} of {n_folds}")

        cv = self.ctx.cross_validate(family, params, hp, seed, on_fold)
        TrialRecord.note(trial, cv_scores=[round(s, 6) for s in cv.scores], cv_std=float(np.std(cv.scores)),
                         best_epoch=cv.median_best_epoch, epochs=int(max(cv.epochs)))
        value = float(np.mean(cv.scores))
        if self._beats_finished(trial, value):  # the final model then needs no replay of the folds
            save_weights(self.ctx.run_dir, trial.number, fold_state(cv))
        return value

    def _fail(self, trial: "optuna.Trial", exc: Exception) -> float:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        TrialRecord.note(trial, fail_reason=reason)
        level = logging.INFO if isinstance(exc, Diverged) else logging.WARNING
        log.log(level, "trial %d failed: %s", trial.number, reason)
        if self.ctx.cfg.debug:
            log.exception("trial %d traceback", trial.number)
        return math.nan  # Optuna records a NaN objective as a failed trial, without a traceback

    def _beats_finished(self, trial: "optuna.Trial", value: float) -> bool:
        from optuna.trial import TrialState

        done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = [t.value for t in done if t.value is not None and math.isfinite(t.value)]
        maximize = self.ctx.plan.objective.direction == "maximize"
        return not values or ((value > max(values)) if maximize else (value < min(values)))


def _reporter(trial: "optuna.Trial") -> Callable[[int, float], None]:
    """Each epoch's objective to the trial; the pruner's verdict raises `Pruned` (after noting the epochs)."""

    def report(step: int, value: float) -> None:
        trial.report(value, step)
        if trial.should_prune():
            TrialRecord.note(trial, epochs=step + 1)
            raise Pruned(f"pruned after epoch {step + 1}")

    return report


FOLD_PREFIX = "fold"


def fold_state(cv: CrossValidation) -> dict[str, "torch.Tensor"]:
    """A cross-validated trial as one flat tensor dict: each fold model's weights and the out-of-fold predictions."""
    import torch

    state = {f"{FOLD_PREFIX}{k}.{name}": tensor for k, model in enumerate(cv.models)
             for name, tensor in model.state_dict().items()}
    state["oof"] = torch.as_tensor(cv.oof)
    state["oof_rows"] = torch.as_tensor(cv.oof_rows)
    return state


def split_fold_state(state: dict[str, "torch.Tensor"]) -> tuple[list[dict[str, "torch.Tensor"]], Any, Any]:
    """`fold_state` undone: per-fold weights (in fold order), out-of-fold predictions, their rows."""
    folds: dict[int, dict[str, "torch.Tensor"]] = {}
    for key, tensor in state.items():
        if key.startswith(FOLD_PREFIX):
            k, name = key[len(FOLD_PREFIX):].split(".", 1)
            folds.setdefault(int(k), {})[name] = tensor
    return [folds[k] for k in sorted(folds)], state["oof"].numpy(), state["oof_rows"].numpy()


def weights_path(run_dir: Path, number: int) -> Path:
    return run_dir / WEIGHTS_DIR / f"trial_{number}.safetensors"


def save_weights(run_dir: Path, number: int, state_dict: dict[str, "torch.Tensor"]) -> None:
    from safetensors.torch import save_file

    path = weights_path(run_dir, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(tmp))
    tmp.replace(path)  # atomic: a crash never leaves half a file behind


def refit_trainer(trainer: "TrainerConfig", epochs: int) -> "TrainerConfig":
    """Trainer settings of a refit for exactly `epochs` epochs (no early stopping)."""
    return dataclasses.replace(trainer, max_epochs=epochs, patience=epochs + 1)
