"""What trials need, built once per search process: the plan, the engine, the data on the device, the rows.

`SearchContext.fit` and `cross_validate` train one configuration at a time with the configured engine (the
fast loop or Lightning); families whose networks stack train several configurations at once through
`automl.training.vectorised` instead (`automl.search.trials`). Also here: the trial as a family sees it
(`FamilyTrial`: parameter names namespaced by the family) and the files a trial leaves for the final model
(`trials/trial_N.safetensors`: its weights, or its fold models, and its validation or out-of-fold predictions).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from automl.training.engine import FitRequest, FitResult

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
    #: Under privacy: the families DP-SGD cannot train here, with the reason (`automl.search.privacy`).
    private_declined: Optional[dict[str, str]] = None
    #: Where the trials train.
    device: Optional["torch.device"] = None
    #: When the whole run must have ended (`search.timeout`; a `time.time()`), or None: the final model's refits
    #: stop in time for the evaluation and the files.
    finish_by: Optional[float] = None

    @property
    def stacks(self) -> bool:
        """Whether stackable families train several configurations as one model here (not under privacy: DP-SGD
        clips each trial's own per-row gradients, which the vectorised engine's fused optimiser does not)."""
        return self.engine.stacks and self.cfg.privacy.epsilon is None

    @property
    def ensembles(self) -> bool:
        """Whether the final model may be an ensemble: asked for, and the predictor format averages models; not
        under privacy, where k members trained on the same rows would compose to more than one model's epsilon."""
        return self.cfg.search.ensemble.size > 0 and self.plan.pipeline.predictor_format().declines_averaging is None \
            and self.cfg.privacy.epsilon is None

    @property
    def candidates(self) -> int:
        """How many of the best trials keep their weights (and predictions) for the final model."""
        return max(1, self.cfg.search.ensemble.candidates) if self.ensembles else 1

    @classmethod
    def build(cls, cfg: "RunConfig", host: "PluginHost", plan: "Plan", prepared: "Prepared", run_dir: Path,
              device: "torch.device") -> "SearchContext":
        import torch

        from automl.training.engine import make_engine

        data = plan.pipeline.bind(prepared, device)
        ctx = cls(cfg, host, plan, prepared, run_dir, make_engine(cfg.trainer.engine), data, device=device)

        def rows(a: "np.ndarray") -> "torch.Tensor":
            return torch.as_tensor(a, dtype=torch.long, device=device)

        ctx.rows = {"train": rows(prepared.train), "val": rows(prepared.val), "test": rows(prepared.test)}
        ctx.y_val = data.targets(prepared.val)
        if prepared.folds and cfg.privacy.epsilon is not None:
            # every row would train k - 1 fold models whose average is the member: the epsilons would compose
            log.info("privacy.epsilon: trials are validated on the validation split, not cross-validated")
        for tr, va in (prepared.folds if cfg.privacy.epsilon is None else None) or []:
            ctx.folds.append((rows(tr), rows(va), data.targets(va)))
        return ctx

    # -- models ------------------------------------------------------------------------------------------

    def new_model(self, family: "ModelFamily", params: dict[str, Any], hp: dict[str, Any]) -> Any:
        """The trainable model of one configuration, as the engine trains it."""
        return self.engine.model(family, params, self.prepared.info, self.data, hp)

    def fit(self, model: Any, hp: dict[str, Any], seed: int, train: "torch.Tensor", val: "torch.Tensor",
            y_val: "np.ndarray", report: Optional[Callable[[int, float], None]] = None,
            trainer: "Optional[TrainerConfig]" = None, keep_last: bool = False,
            check: Optional[Callable[[int, int, int], None]] = None) -> FitResult:
        privacy = None
        if self.cfg.privacy.epsilon is not None:  # DP-SGD; input maps fitted on public reference values, not rows
            from automl.training.private import public_inputs, settings

            privacy = settings(self.cfg.privacy, self.engine.name, len(self.prepared.train))
            public_inputs(self.engine.network(model), self.data)
        else:
            self.data.fit_inputs(self.engine.network(model), train)
        return self.engine.fit(FitRequest(
            model=model, data=self.data, train=train, val=val, y_val=y_val, hp=hp,
            trainer=trainer or self.cfg.trainer, objective=self.plan.objective, seed=seed,
            stopper=self.plan.stopper, report=report, keep_last=keep_last, check=check, privacy=privacy,
        ))

    def cross_validate(self, family: "ModelFamily", params: dict[str, Any], hp: dict[str, Any], seed: int,
                       on_fold: Optional[Callable[[int, float], None]] = None,
                       check: Optional[Callable[[int, int, int], None]] = None) -> "CrossValidation":
        """One model per fold (seeded per fold), the fold models and each row's out-of-fold predictions."""
        import numpy as np
        import torch

        cv = CrossValidation()
        predictions = []
        for k, (train, val, y_val) in enumerate(self.folds):
            torch.manual_seed(seed * 1000 + k)
            model = self.new_model(family, params, hp)
            result = self.fit(model, hp, seed * 1000 + k, train, val, y_val, check=check)
            cv.scores.append(result.value)
            cv.best_epochs.append(result.best_epoch)
            cv.epochs.append(result.epochs)
            net = self.engine.network(model)
            net.load_state_dict(result.state_dict)
            predictions.append((val.cpu().numpy(), self.data.predict(net, val, self.cfg.trainer.eval_batch_size)))
            cv.models.append(net)
            if on_fold is not None:
                on_fold(k, float(np.mean(cv.scores)))
        if predictions:
            cv.oof, cv.oof_rows = out_of_fold(predictions)
        return cv


def out_of_fold(predictions: list[tuple["np.ndarray", "np.ndarray"]]) -> tuple["np.ndarray", "np.ndarray"]:
    """Each row's out-of-fold prediction from (validation rows, predictions) per fold, averaged over repeats;
    returns the predictions and their rows (sorted)."""
    import numpy as np

    rows = np.concatenate([r for r, _ in predictions])
    order = np.unique(rows)
    total = np.zeros((len(order), *predictions[0][1].shape[1:]))
    count = np.zeros(len(order))
    for r, p in predictions:
        at = np.searchsorted(order, r)
        np.add.at(total, at, p)
        np.add.at(count, at, 1)
    return total / count.reshape(-1, *([1] * (total.ndim - 1))), order


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


FOLD_PREFIX = "fold"
#: Keys of a trial file that are not weights ("@" cannot start a module's attribute name).
PREDICTIONS, OOF, OOF_ROWS = "@predictions", "@oof", "@oof_rows"


def split_state(state_dict: dict[str, "torch.Tensor"], predictions: "np.ndarray") -> dict[str, "torch.Tensor"]:
    """A trial scored on one validation split as one flat tensor dict: its weights and its validation predictions."""
    import torch

    return {**state_dict, PREDICTIONS: torch.as_tensor(predictions, dtype=torch.float32)}


def fold_state(states: list[dict[str, "torch.Tensor"]], oof: "np.ndarray",
               oof_rows: "np.ndarray") -> dict[str, "torch.Tensor"]:
    """A cross-validated trial as one flat tensor dict: each fold model's weights and the out-of-fold predictions."""
    import torch

    state = {f"{FOLD_PREFIX}{k}.{name}": tensor for k, fold in enumerate(states) for name, tensor in fold.items()}
    state[OOF] = torch.as_tensor(oof, dtype=torch.float32)
    state[OOF_ROWS] = torch.as_tensor(oof_rows)
    return state


def split_fold_state(state: dict[str, "torch.Tensor"]) -> tuple[list[dict[str, "torch.Tensor"]], Any, Any]:
    """`fold_state` undone: per-fold weights (in fold order), out-of-fold predictions, their rows."""
    folds: dict[int, dict[str, "torch.Tensor"]] = {}
    for key, tensor in state.items():
        if key.startswith(FOLD_PREFIX):
            k, name = key[len(FOLD_PREFIX):].split(".", 1)
            folds.setdefault(int(k), {})[name] = tensor
    return [folds[k] for k in sorted(folds)], state[OOF].numpy(), state[OOF_ROWS].numpy()


def is_cross_validated(state: dict[str, "torch.Tensor"]) -> bool:
    return OOF in state


def weights_only(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """A split trial's weights, without its predictions."""
    return {k: v for k, v in state.items() if not k.startswith("@")}


def weights_path(run_dir: Path, number: int) -> Path:
    return run_dir / WEIGHTS_DIR / f"trial_{number}.safetensors"


def save_weights(run_dir: Path, number: int, state_dict: dict[str, "torch.Tensor"]) -> None:
    from safetensors.torch import save_file

    path = weights_path(run_dir, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(tmp))
    tmp.replace(path)  # atomic: a crash never leaves half a file behind


def final_reserve(timeout: float) -> float:
    """Seconds of `search.timeout` the trials leave to the final model (its refits), its evaluation and the files:
    a fifth of the budget, at least 3 s, at most half."""
    return min(max(0.2 * timeout, 3.0), 0.5 * timeout)


def run_end(timeout: Optional[float], deadline: Optional[float]) -> Optional[float]:
    """When the run must have ended, from its search's deadline (`automl.run.search_deadline`)."""
    return None if timeout is None or deadline is None else deadline + final_reserve(float(timeout))


def refit_trainer(trainer: "TrainerConfig", epochs: int) -> "TrainerConfig":
    """Trainer settings of a refit for exactly `epochs` epochs (no early stopping)."""
    return dataclasses.replace(trainer, max_epochs=epochs, patience=epochs + 1)
