"""What one trial does: pick a family, sample its architecture and the training hyperparameters, train,
return the validation objective. Built once per process as a `SearchContext`, called once per trial.

The family is itself a searched (categorical) parameter, so every architecture competes in one study.
Family parameters are namespaced (`mlp.depth`), training parameters are shared (`lr`, `batch_size`).
A trial that raises or diverges is recorded as failed with its reason (user attribute `fail_reason`) and
the study goes on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from automl.search.study import FAIL_REASON
from automl.training.fast import Diverged, FitResult, Pruned

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import torch

    from automl.config import RunConfig, TrainerConfig
    from automl.pipeline import Pipeline, Prepared
    from automl.plugins import PluginHost
    from automl.specs import DomainSpec, MetricSpec, ModelFamily

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
    """Everything trials need, built once per process: data already on the device."""

    cfg: "RunConfig"
    host: "PluginHost"
    domain: "DomainSpec"
    pipeline: "Pipeline"
    prepared: "Prepared"
    families: list["ModelFamily"]
    objective: "MetricSpec"
    run_dir: Path
    device: "torch.device"
    data: dict[str, "torch.Tensor"] = field(default_factory=dict)
    rows: dict[str, "torch.Tensor"] = field(default_factory=dict)
    folds: list[tuple["torch.Tensor", "torch.Tensor", "np.ndarray"]] = field(default_factory=list)
    y_val: Optional["np.ndarray"] = None
    #: What early stopping watches (None: the objective); see `automl.training.fast.EpochJudge`.
    stopper: Optional["MetricSpec"] = None

    @classmethod
    def build(cls, cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec", pipeline: "Pipeline",
              prepared: "Prepared", families: list["ModelFamily"], objective: "MetricSpec", run_dir: Path,
              device: "torch.device") -> "SearchContext":
        import torch

        ctx = cls(cfg, host, domain, pipeline, prepared, families, objective, run_dir, device)
        ctx.data = pipeline.to_device(prepared, device)

        def rows(a: "np.ndarray") -> "torch.Tensor":
            return torch.as_tensor(a, dtype=torch.long, device=device)

        ctx.rows = {"train": rows(prepared.train), "val": rows(prepared.val), "test": rows(prepared.test)}
        ctx.y_val = pipeline.targets(prepared, prepared.val)
        for tr, va in prepared.folds or []:
            ctx.folds.append((rows(tr), rows(va), pipeline.targets(prepared, va)))
        ctx.stopper = stopping_metric(cfg.trainer.stop_on, pipeline, prepared.info, host, objective)
        return ctx

    # -- models ------------------------------------------------------------------------------------------

    def build_model(self, family: "ModelFamily", params: dict[str, Any], hp: dict[str, Any]) -> Any:
        """A plain network for the fast engine; a LightningModule when the family or the engine needs one."""
        info = self.prepared.info
        if family.build is not None:
            return family.build(params, info)
        net = family.network(params, info)
        if self.cfg.trainer.engine == "lightning":
            from automl.training.module import NetworkModule

            pipeline = self.pipeline
            return NetworkModule(net, lambda n, batch: pipeline.loss(n, batch, hp), hp)
        return net

    def fit(self, family: "ModelFamily", model: Any, hp: dict[str, Any], seed: int, train: "torch.Tensor",
            val: "torch.Tensor", y_val: "np.ndarray", trial: "Optional[optuna.Trial]" = None,
            trainer: "Optional[TrainerConfig]" = None, keep_last: bool = False) -> FitResult:
        trainer = trainer or self.cfg.trainer
        if self.cfg.trainer.engine == "lightning":
            from automl.training.lightning_engine import fit_lightning

            result = fit_lightning(model, self.pipeline, self.data, train, val, y_val, hp, trainer,
                                   self.objective, seed, trial, keep_last, self.stopper)
            if family.network is not None:  # host-wrapped network: keep its own weights, as the fast engine does
                result.state_dict = {k[len("net."):]: v for k, v in result.state_dict.items()
                                     if k.startswith("net.")}
            return result
        from automl.training.fast import fit

        report = None
        if trial is not None:
            def report(step: int, value: float) -> None:
                trial.report(value, step)
                if trial.should_prune():
                    trial.set_user_attr("epochs", step + 1)
                    raise Pruned(f"pruned after epoch {step + 1}")

        return fit(model, self.pipeline, self.data, train, val, y_val, hp, trainer, self.objective, seed,
                   report, keep_last, self.stopper)

    def cross_validate(self, family: "ModelFamily", params: dict[str, Any], hp: dict[str, Any], seed: int,
                       on_fold: Optional[Callable[[int, float], None]] = None,
                       collect: bool = False) -> "CrossValidation":
        """One model per fold (seeded per fold); `collect` keeps the fold models and each row's out-of-fold predictions."""
        import numpy as np
        import torch

        cv = CrossValidation()
        total, count = None, np.zeros(len(self.prepared.arrays["y"]))
        for k, (train, val, y_val) in enumerate(self.folds):
            torch.manual_seed(seed * 1000 + k)
            model = self.build_model(family, params, hp)
            result = self.fit(family, model, hp, seed * 1000 + k, train, val, y_val)
            cv.scores.append(result.value)
            cv.best_epochs.append(result.best_epoch)
            cv.epochs.append(result.epochs)
            if collect:
                from automl.training.fast import unwrap

                model.load_state_dict(self._module_state(family, result.state_dict))
                p = self.pipeline.predict(unwrap(model), self.data, val, self.cfg.trainer.eval_batch_size)
                rows = val.cpu().numpy()
                total = np.zeros((len(count), *p.shape[1:])) if total is None else total
                total[rows] += p
                count[rows] += 1
                cv.models.append(unwrap(model))
            if on_fold is not None:
                on_fold(k, float(np.mean(cv.scores)))
        if collect and total is not None:
            seen = count > 0
            cv.oof_rows = np.flatnonzero(seen)
            cv.oof = total[seen] / count[seen].reshape(-1, *([1] * (total.ndim - 1)))
        return cv

    def _module_state(self, family: "ModelFamily", state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """A fit returns the network's own weights; a host-wrapped module (Lightning engine) prefixes them."""
        if self.cfg.trainer.engine == "lightning" and family.network is not None:
            return {f"net.{k}": v for k, v in state.items()}
        return state

    def family(self, name: str) -> "ModelFamily":
        return next(f for f in self.families if f.name == name)


def stopping_metric(stop_on: str, pipeline: "Pipeline", info: Any, host: "PluginHost",
                    objective: "MetricSpec") -> Optional["MetricSpec"]:
    """`trainer.stop_on` resolved: auto (the pipeline's choice), objective, or a metric by name."""
    from automl.errors import ConfigError

    name = pipeline.stopping_metric(info) if stop_on == "auto" else (None if stop_on == "objective" else stop_on)
    if name is None or name == objective.name:
        return None
    metric = host.metrics.get(name)
    if info.task not in metric.tasks:
        raise ConfigError(f"trainer.stop_on={name} does not apply to {info.task} tasks: use auto, objective or a "
                          f"metric of that task")
    return metric


@dataclass
class CrossValidation:
    scores: list[float] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    #: Out-of-fold predictions (averaged over repeats) of the rows in `oof_rows`, when collected.
    oof: Optional["np.ndarray"] = None
    oof_rows: Optional["np.ndarray"] = None
    #: The trained fold models, when collected.
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
        names = [f.name for f in ctx.families]
        name = names[0] if len(names) == 1 else trial.suggest_categorical("family", names)
        family = ctx.family(name)
        info = ctx.prepared.info
        try:
            params = family.search_space(FamilyTrial(trial, family.name), info)
            hp = ctx.pipeline.training_space(trial, info)
            trial.set_user_attr("family", family.name)
            trial.set_user_attr("params", params)
            trial.set_user_attr("hp", hp)
            seed = ctx.cfg.seed + trial.number
            if ctx.folds:
                return self._cross_validate(trial, family, params, hp, seed)
            torch.manual_seed(seed)
            model = ctx.build_model(family, params, hp)
            result = ctx.fit(family, model, hp, seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val, trial)
        except (Pruned, optuna.TrialPruned) as exc:
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any failure of a trial is recorded and the study goes on
            return self._fail(trial, exc)
        self._record(trial, result)
        self._keep_weights_if_best(trial, result)
        return result.value

    def _cross_validate(self, trial: "optuna.Trial", family: "ModelFamily", params: dict, hp: dict,
                        seed: int) -> float:
        import numpy as np
        import optuna

        n_folds = len(self.ctx.folds)

        def on_fold(k: int, mean: float) -> None:
            trial.report(mean, k)
            if trial.should_prune():
                trial.set_user_attr("epochs", k + 1)
                raise optuna.TrialPruned(f"pruned after fold {k + 1} of {n_folds}")

        cv = self.ctx.cross_validate(family, params, hp, seed, on_fold, collect=True)
        trial.set_user_attr("cv_scores", [round(s, 6) for s in cv.scores])
        trial.set_user_attr("cv_std", float(np.std(cv.scores)))
        trial.set_user_attr("best_epoch", cv.median_best_epoch)
        trial.set_user_attr("epochs", int(max(cv.epochs)))
        value = float(np.mean(cv.scores))
        if self._beats_finished(trial, value):  # the final model then needs no replay of the folds
            save_weights(self.ctx.run_dir, trial.number, fold_state(cv))
        return value

    def _fail(self, trial: "optuna.Trial", exc: Exception) -> float:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        trial.set_user_attr(FAIL_REASON, reason)
        level = logging.INFO if isinstance(exc, Diverged) else logging.WARNING
        log.log(level, "trial %d failed: %s", trial.number, reason)
        if self.ctx.cfg.debug:
            log.exception("trial %d traceback", trial.number)
        return math.nan  # Optuna records a NaN objective as a failed trial, without a traceback

    @staticmethod
    def _record(trial: "optuna.Trial", result: FitResult) -> None:
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs", result.epochs)
        trial.set_user_attr("fit_s", round(result.fit_s, 4))
        trial.set_user_attr("compute_s", round(result.compute_s, 4))

    def _keep_weights_if_best(self, trial: "optuna.Trial", result: FitResult) -> None:
        """Save weights only when the trial beats every finished trial, so the final model needs no refit."""
        if self._beats_finished(trial, result.value):
            save_weights(self.ctx.run_dir, trial.number, result.state_dict)

    def _beats_finished(self, trial: "optuna.Trial", value: float) -> bool:
        from optuna.trial import TrialState

        done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = [t.value for t in done if t.value is not None and math.isfinite(t.value)]
        maximize = self.ctx.objective.direction == "maximize"
        return not values or ((value > max(values)) if maximize else (value < min(values)))


FOLD_PREFIX = "fold"


def fold_state(cv: "CrossValidation") -> dict[str, "torch.Tensor"]:
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
