"""After the search: restore the best trial's model, evaluate it once on the untouched test rows, save it.

The best trial's weights were saved when it finished (`trials/trial_N.safetensors`), so no refit is needed;
when they are missing (a trial run by a worker on another machine) the best parameters are trained once
more on the training rows with the same seed.

Cross-validated studies (small data) end differently: the best trial saved its fold models and an out-of-fold
prediction for every development row (replayed when missing), and the final model is the fold models averaged
(`PredictorFormat.combine`; see `automl.tabular.averaging` for why), or, for a pipeline that cannot average
models, one model trained on all development rows for the median of the folds' best epochs. Calibration and
operating points are then chosen on those out-of-fold predictions (five times the rows of a validation
split), and the model that is saved has seen every row but the test ones.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from automl.evaluation import Evaluation
from automl.records import FinalModel, FinalReport, Member, PredictorMeta, TrialRecord
from automl.search.objective import WEIGHTS_DIR, refit_trainer, split_fold_state, weights_path

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.search.objective import SearchContext

log = logging.getLogger(__name__)

PREDICTOR_DIR = "predictor"
BAGGED = "out-of-fold over the development rows; final model: the fold models averaged"


def finalize(ctx: "SearchContext", study: "optuna.Study") -> FinalModel:
    import torch
    from safetensors.torch import load_file

    plan, prepared, data = ctx.plan, ctx.prepared, ctx.data
    best = study.best_trial
    record = TrialRecord.of(best)
    family = plan.family(record.family) if record.family in {f.name for f in plan.families} \
        else ctx.host.model_families.get(record.family)
    params, hp, info, bs = record.params, record.hp, prepared.info, ctx.cfg.trainer.eval_batch_size
    fmt = plan.pipeline.predictor_format()
    seed = ctx.cfg.seed + best.number
    folds = 0
    if ctx.folds:
        model, val_rows, p_val, kind, folds = _final_from_folds(ctx, family, best, record, seed)
    else:
        model = family.create(params, info)
        path = weights_path(ctx.run_dir, best.number)
        stored = load_file(str(path)) if path.exists() else {}
        if stored and "oof" not in stored:  # "oof": the trial was cross-validated, in an earlier run of the study
            model.load_state_dict(stored)
        else:
            log.info("training the best parameters (trial %d) once more on the training rows", best.number)
            torch.manual_seed(seed)
            trained = ctx.new_model(family, params, hp)
            result = ctx.fit(trained, hp, seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val)
            model.load_state_dict(result.state_dict)
        model.to(data.device)
        val_rows, kind = prepared.val, "validation split"
        p_val = data.predict(model, ctx.rows["val"], bs)

    ev = Evaluation(
        run_dir=ctx.run_dir, domain=plan.domain, options=plan.options, task=info.task,
        y_val=data.targets(val_rows), p_val=p_val,
        y_test=data.targets(prepared.test), p_test=data.predict(model, ctx.rows["test"], bs),
        metric_specs=list(plan.metrics), classes=prepared.state.get("classes"),
        positive_class=prepared.state.get("positive_class"),
        side_val={k: v[val_rows] for k, v in prepared.side.items()},
        side_test={k: v[prepared.test] for k, v in prepared.side.items()},
    )
    ev.recompute()
    if plan.domain.evaluate is not None:
        plan.domain.evaluate(ev)
    report = FinalReport(
        test=dict(ev.metrics), validation=ev.compute(ev.y_val, ev.p_val), ci95=dict(ev.ci95),
        details=dict(ev.details), n_test=int(len(prepared.test)),
        validation_rows=f"{kind} ({len(val_rows)} rows)",
        model={"family": family.name, "best_trial": best.number, "objective": plan.objective.name,
               "members": [{"trial": best.number, "family": family.name, "weight": 1.0, "folds": folds}]},
    )
    options = dataclasses.asdict(plan.options) if dataclasses.is_dataclass(plan.options) else None
    meta = PredictorMeta(
        pipeline=plan.pipeline.name, domain=plan.domain.name, task=info.task, info=dataclasses.asdict(info),
        members=[Member(trial=best.number, family=family.name, params=params, hp=hp, weight=1.0, folds=folds)],
        objective=plan.objective.name, domain_options=options, validation_value=best.value,
        threshold=ev.threshold, calibration=ev.calibration, notes=dict(ev.notes),
    )
    fmt.save(ctx.run_dir / PREDICTOR_DIR, prepared, meta, model.state_dict())
    _keep_only(ctx, best.number)
    return FinalModel(best.number, float(best.value), family.name, dict(best.params), report)


def _final_from_folds(ctx: "SearchContext", family: Any, best: "optuna.trial.FrozenTrial", record: TrialRecord,
                      seed: int) -> tuple[Any, Any, Any, str, int]:
    """Out-of-fold predictions of the best parameters, then the final model: the fold models combined (and
    their number), or a refit (0).

    The best trial saved its fold models and out-of-fold predictions when it finished; they are replayed only
    when that file is missing (a trial run by a worker on another machine).
    """
    import torch
    from safetensors.torch import load_file

    params, hp, info = record.params, record.hp, ctx.prepared.info
    path = weights_path(ctx.run_dir, best.number)
    stored = load_file(str(path)) if path.exists() else {}
    if "oof" in stored:  # absent too when the trial ran before the study was cross-validated
        states, oof, oof_rows = split_fold_state(stored)
        members = [family.create(params, info) for _ in states]
        for member, state in zip(members, states):
            member.load_state_dict(state)
        epochs = int(record.best_epoch)
    else:
        log.info("replaying the folds of the best parameters (trial %d)", best.number)
        cv = ctx.cross_validate(family, params, hp, seed)
        members, oof, oof_rows, epochs = cv.models, cv.oof, cv.oof_rows, cv.median_best_epoch
    combined = ctx.plan.pipeline.predictor_format().combine(members, [1.0] * len(members), info)
    if combined is not None:
        log.info("cross-validated study: the final model averages the %d fold models; calibration and operating "
                 "points use their out-of-fold predictions on %d development rows", len(members), len(oof_rows))
        return combined.to(ctx.data.device), oof_rows, oof, BAGGED, len(members)
    log.info("cross-validated study: out-of-fold predictions from %d fold models; final model trained on all %d "
             "development rows for %d epochs (the folds' median best)", len(members), len(oof_rows), epochs)
    dev = torch.as_tensor(ctx.prepared.development_rows(), dtype=torch.long, device=ctx.data.device)
    torch.manual_seed(seed)
    trained = ctx.new_model(family, params, hp)
    y_dev = ctx.data.targets(dev.cpu().numpy())
    result = ctx.fit(trained, hp, seed, dev, dev, y_dev, trainer=refit_trainer(ctx.cfg.trainer, epochs),
                     keep_last=True)
    model = family.create(params, info)
    model.load_state_dict(result.state_dict)
    return model.to(ctx.data.device), oof_rows, oof, "out-of-fold over the development rows", 0


def _keep_only(ctx: "SearchContext", number: int) -> None:
    """Weights of trials that are no longer the best are deleted; the best one's stay for a continued study."""
    keep = weights_path(ctx.run_dir, number)
    for path in (ctx.run_dir / WEIGHTS_DIR).glob("trial_*.safetensors"):
        if path != keep:
            path.unlink(missing_ok=True)
