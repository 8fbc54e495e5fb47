"""After the search: restore the best trial's model, evaluate it once on the untouched test rows, save it.

The best trial's weights were saved when it finished (`trials/trial_N.safetensors`), so no refit is needed;
when they are missing (cross-validated trials, or a trial run by a worker on another machine) the best
parameters are trained once more on the training rows with the same seed.
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
    model = family.network(params, info) if family.network is not None else family.build(params, info)
    path = weights_path(ctx.run_dir, best.number)
    if path.exists():
        model.load_state_dict(load_file(str(path)))
    else:
        log.info("training the best parameters (trial %d) once more on the training rows", best.number)
        seed = ctx.cfg.seed + best.number
        torch.manual_seed(seed)
        trained = ctx.build_model(family, params, hp)
        result = ctx.fit(family, trained, hp, seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val)
        model.load_state_dict(result.state_dict)
    model.to(ctx.device)

    pipeline, prepared, bs = ctx.pipeline, ctx.prepared, ctx.cfg.trainer.eval_batch_size
    ev = Evaluation(
        run_dir=ctx.run_dir, domain=plan.domain, options=plan.options, task=info.task,
        y_val=ctx.y_val, p_val=pipeline.predict(model, ctx.data, ctx.rows["val"], bs),
        y_test=pipeline.targets(prepared, prepared.test),
        p_test=pipeline.predict(model, ctx.data, ctx.rows["test"], bs),
        metric_specs=plan.metrics, classes=prepared.state.get("classes"),
        positive_class=prepared.state.get("positive_class"),
        side_val={k: v[prepared.val] for k, v in prepared.side.items()},
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
    }
    options = dataclasses.asdict(plan.options) if dataclasses.is_dataclass(plan.options) else None
    extra = {
        "domain": plan.domain.name,
        "domain_options": options,
        "objective": plan.objective.name,
        "hyperparameters": hp,
        "best_trial": best.number,
        "validation_value": best.value,
        **ev.predictor_extra,
    }
    if save_preprocessing:
        pipeline.save_predictor(str(ctx.run_dir / PREDICTOR_DIR), prepared, family.name, params,
                                model.state_dict(), extra)
    _keep_only(ctx, best.number)
    return Final(best.number, float(best.value), family.name, dict(best.params), test_metrics, extra)


def _keep_only(ctx: "SearchContext", number: int) -> None:
    """Weights of trials that are no longer the best are deleted; the best one's stay for a continued study."""
    keep = weights_path(ctx.run_dir, number)
    for path in (ctx.run_dir / WEIGHTS_DIR).glob("trial_*.safetensors"):
        if path != keep:
            path.unlink(missing_ok=True)
