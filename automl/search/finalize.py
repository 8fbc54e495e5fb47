"""After the search: restore the best trial's model, evaluate it once on the untouched test rows, save it.

The best trial's weights were saved when it finished (`trials/trial_N.safetensors`), so no refit is needed;
when they are missing (a trial run by a worker on another machine) the best parameters are trained once
more on the training rows with the same seed.

Cross-validated studies (small data) end differently: the best trial saved its fold models and an out-of-fold
prediction for every development row (replayed when missing), and the final model is the fold models averaged
(`Pipeline.bag`; see `automl.tabular.bagging` for why), or, for a pipeline that does not bag, one model
trained on all development rows for the median of the folds' best epochs. Calibration and operating points
are then chosen on those out-of-fold predictions (five times the rows of a validation split), and the model
that is saved has seen every row but the test ones.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automl.evaluation import Evaluation
from automl.search.objective import WEIGHTS_DIR, weights_path

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.run import Plan
    from automl.search.objective import SearchContext

log = logging.getLogger(__name__)

PREDICTOR_DIR = "predictor"
BAGGED = "out-of-fold over the development rows; final model: the fold models averaged"


@dataclass
class Final:
    number: int
    value: float
    family: str
    params: dict[str, Any]
    test_metrics: dict[str, Any]
    predictor_extra: dict[str, Any]


def finalize(ctx: "SearchContext", study: "optuna.Study", plan: "Plan", save_preprocessing: bool = True) -> Final:
    import torch
    from safetensors.torch import load_file

    best = study.best_trial
    family = ctx.host.model_families.get(best.user_attrs["family"])
    params, hp = best.user_attrs["params"], best.user_attrs["hp"]
    info = ctx.prepared.info
    pipeline, prepared, bs = ctx.pipeline, ctx.prepared, ctx.cfg.trainer.eval_batch_size
    model = family.create(params, info)
    seed = ctx.cfg.seed + best.number
    path = weights_path(ctx.run_dir, best.number)
    bagged = 0
    if ctx.folds:
        model, val_rows, p_val, kind = _final_from_folds(ctx, family, best, model, seed)
        bagged = len(model.members) if kind == BAGGED else 0
    else:
        stored = load_file(str(path)) if path.exists() else {}
        if stored and "oof" not in stored:  # "oof": the trial was cross-validated, in an earlier run of the study
            model.load_state_dict(stored)
        else:
            log.info("training the best parameters (trial %d) once more on the training rows", best.number)
            torch.manual_seed(seed)
            trained = ctx.build_model(family, params, hp)
            result = ctx.fit(family, trained, hp, seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val)
            model.load_state_dict(result.state_dict)
        model.to(ctx.device)
        val_rows, kind = prepared.val, "validation split"
        p_val = pipeline.predict(model, ctx.data, ctx.rows["val"], bs)

    ev = Evaluation(
        run_dir=ctx.run_dir, domain=plan.domain, options=plan.options, task=info.task,
        y_val=pipeline.targets(prepared, val_rows), p_val=p_val,
        y_test=pipeline.targets(prepared, prepared.test),
        p_test=pipeline.predict(model, ctx.data, ctx.rows["test"], bs),
        metric_specs=plan.metrics, classes=prepared.state.get("classes"),
        positive_class=prepared.state.get("positive_class"),
        side_val={k: v[val_rows] for k, v in prepared.side.items()},
        side_test={k: v[prepared.test] for k, v in prepared.side.items()},
    )
    ev.recompute()
    if plan.domain.evaluate is not None:
        plan.domain.evaluate(ev)
    validation = ev.compute(ev.y_val, ev.p_val)
    test_metrics = {
        **ev.metrics,
        "split": "test",
        "n_test": int(len(prepared.test)),
        "objective": plan.objective.name,
        "best_trial": best.number,
        "family": family.name,
        "validation": validation,
        "validation_rows": f"{kind} ({len(val_rows)} rows)",
    }
    options = dataclasses.asdict(plan.options) if dataclasses.is_dataclass(plan.options) else None
    extra = {
        "domain": plan.domain.name,
        "domain_options": options,
        "objective": plan.objective.name,
        "hyperparameters": hp,
        "best_trial": best.number,
        "validation_value": best.value,
        **({"bagged": bagged} if bagged else {}),
        **ev.predictor_extra,
    }
    if save_preprocessing:
        pipeline.save_predictor(str(ctx.run_dir / PREDICTOR_DIR), prepared, family.name, params,
                                model.state_dict(), extra)
    _keep_only(ctx, best.number)
    return Final(best.number, float(best.value), family.name, dict(best.params), test_metrics, extra)


def _final_from_folds(ctx: "SearchContext", family: Any, best: "optuna.trial.FrozenTrial", model: Any,
                      seed: int) -> tuple[Any, Any, Any, str]:
    """Out-of-fold predictions of the best parameters, then the final model: the fold models bagged, or a refit.

    The best trial saved its fold models and out-of-fold predictions when it finished; they are replayed only
    when that file is missing (a trial run by a worker on another machine).
    """
    import dataclasses

    import torch
    from safetensors.torch import load_file

    from automl.search.objective import split_fold_state

    params, hp = best.user_attrs["params"], best.user_attrs["hp"]
    path = weights_path(ctx.run_dir, best.number)
    stored = load_file(str(path)) if path.exists() else {}
    if "oof" in stored:  # absent too when the trial ran before the study was cross-validated
        states, oof, oof_rows = split_fold_state(stored)
        members = [family.create(params, ctx.prepared.info) for _ in states]
        for member, state in zip(members, states):
            member.load_state_dict(state)
        epochs = int(best.user_attrs["best_epoch"])
    else:
        log.info("replaying the folds of the best parameters (trial %d)", best.number)
        cv = ctx.cross_validate(family, params, hp, seed, collect=True)
        members, oof, oof_rows, epochs = cv.models, cv.oof, cv.oof_rows, cv.median_best_epoch
    bag = ctx.pipeline.bag(members)
    if bag is not None:
        log.info("cross-validated study: the final model averages the %d fold models; calibration and operating "
                 "points use their out-of-fold predictions on %d development rows", len(members), len(oof_rows))
        return bag.to(ctx.device), oof_rows, oof, BAGGED
    log.info("cross-validated study: out-of-fold predictions from %d fold models; final model trained on all %d "
             "development rows for %d epochs (the folds' median best)", len(members), len(oof_rows), epochs)
    dev = torch.as_tensor(ctx.prepared.development_rows(), dtype=torch.long, device=ctx.device)
    trainer = dataclasses.replace(ctx.cfg.trainer, max_epochs=epochs, patience=epochs + 1)
    torch.manual_seed(seed)
    trained = ctx.build_model(family, params, hp)
    y_dev = ctx.pipeline.targets(ctx.prepared, dev.cpu().numpy())
    result = ctx.fit(family, trained, hp, seed, dev, dev, y_dev, trainer=trainer, keep_last=True)
    model.load_state_dict(result.state_dict)
    model.to(ctx.device)
    return model, oof_rows, oof, "out-of-fold over the development rows"


def _keep_only(ctx: "SearchContext", number: int) -> None:
    """Weights of trials that are no longer the best are deleted; the best one's stay for a continued study."""
    keep = weights_path(ctx.run_dir, number)
    for path in (ctx.run_dir / WEIGHTS_DIR).glob("trial_*.safetensors"):
        if path != keep:
            path.unlink(missing_ok=True)
