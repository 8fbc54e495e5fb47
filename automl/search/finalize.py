"""After the search: build the final model from the best trials, evaluate it once on the untouched test rows,
save it.

The best trials left their weights and their held-out predictions in `trials/` when they finished, so nothing
is retrained: ensemble selection (`automl.search.ensemble`, Caruana et al. 2004) picks a weighted ensemble of
them on those predictions, and the final model averages its members' probabilities (or values) with those
weights (`PredictorFormat.combine`). With `search.ensemble.size=0`, or a format that does not average models
(`PredictorFormat.declines_averaging`), the final model is the best trial alone. When no trial file is there
(trials run by a worker on another machine) the best parameters are trained once more with the same seed.

Cross-validated studies (small data): a trial's held-out predictions are out-of-fold predictions of every
development row, and a member of the final model is that trial's fold models averaged (as AutoGluon bags);
calibration and operating points are chosen on the out-of-fold predictions (five times the rows of a
validation split). A pipeline that cannot average models refits the best parameters on all development rows
for the folds' median best epoch instead.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from automl.evaluation import Evaluation
from automl.integrity import requirements, seal
from automl.records import FinalModel, FinalReport, Member, PredictorMeta, TrialRecord
from automl.search.context import (PREDICTIONS, WEIGHTS_DIR, is_cross_validated, refit_trainer, split_fold_state,
                                   weights_only, weights_path)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna

    from automl.search.context import SearchContext
    from automl.specs import ModelFamily

log = logging.getLogger(__name__)

PREDICTOR_DIR = "predictor"
BAGGED = "out-of-fold over the development rows; a member: its fold models averaged"


@dataclass
class Candidate:
    """A finished trial whose file is there: what it predicted on the held-out rows, and its weights."""

    trial: "optuna.trial.FrozenTrial"
    record: TrialRecord
    family: "ModelFamily"
    state: dict[str, Any]
    rows: "np.ndarray"
    predictions: Optional["np.ndarray"]


def finalize(ctx: "SearchContext", study: "optuna.Study") -> FinalModel:
    plan, prepared, data = ctx.plan, ctx.prepared, ctx.data
    info, bs = prepared.info, ctx.cfg.trainer.eval_batch_size
    fmt = plan.pipeline.predictor_format()
    requirements_ = plan.requirements
    best, front = _best_trial(ctx, study)
    best_value = float(best.values[0] if front is not None else best.value)
    candidates = _candidates(ctx, study)
    if front is not None:  # a multi-objective pick is one trial: no ensemble mixes the front's trade-offs
        candidates = [c for c in candidates if c.trial.number == best.number]
    selection = _select(ctx, candidates)
    if selection is not None and requirements_ is not None and requirements_.constraints:
        selection = _feasible_ensemble(ctx, candidates, selection)
    if selection is None:  # the best trial alone
        chosen = [(candidates[0], 1.0)] if candidates and candidates[0].trial.number == best.number else []
    else:
        chosen = [(candidates[i], w) for i, w in sorted(selection.weights.items(), key=lambda kv: -kv[1])]
    searched, refit = None, None
    if chosen:
        models = [_member_model(ctx, c) for c, _ in chosen]
        weights = [w for _, w in chosen]
        model = models[0][0] if len(models) == 1 else fmt.combine([m for m, _ in models], weights, info)
        if _refits(ctx, front):
            refitted, refit = _refit_members(ctx, chosen, [m for m, _ in models])
            if refit["members"]:
                searched = model
                model = refitted[0] if len(refitted) == 1 else fmt.combine(refitted, weights, info)
        val_rows = chosen[0][0].rows
        p_val = sum(w * c.predictions for c, w in chosen) if chosen[0][0].predictions is not None else None
        folds = [n for _, n in models]
        kind = BAGGED if ctx.folds and any(folds) else ("validation split" if not ctx.folds else
                                                          "out-of-fold over the development rows")
    else:
        model, val_rows, p_val, kind, folds = _retrain_best(ctx, best)
        chosen, weights = [], [1.0]
    model.to(data.device)
    if p_val is None:
        p_val = data.predict(model, _rows(ctx, val_rows), bs)

    ev = Evaluation(
        run_dir=ctx.run_dir, domain=plan.domain, options=plan.options, task=info.task,
        y_val=data.targets(val_rows), p_val=p_val,
        y_test=data.targets(prepared.test), p_test=data.predict(model, ctx.rows["test"], bs),
        metric_specs=list(plan.metrics), classes=prepared.state.get("classes"),
        positive_class=prepared.state.get("positive_class"),
        side_val={k: v[val_rows] for k, v in prepared.side.items()},
        side_test={k: v[prepared.test] for k, v in prepared.side.items()},
        constraints=list(requirements_.constraints) if requirements_ is not None else [],
    )
    ev.recompute()
    best_family = ctx.host.model_families.get(TrialRecord.of(best).family)
    members = [Member(trial=c.trial.number, family=c.family.name, params=c.record.params, hp=c.record.hp,
                      weight=round(w, 6), folds=n) for (c, w), n in zip(chosen, folds)] or \
        [Member(trial=best.number, family=best_family.name, params=TrialRecord.of(best).params,
                hp=TrialRecord.of(best).hp, weight=1.0, folds=folds[0])]
    ensemble, best_single = None, None
    if len(members) > 1:
        ensemble = {"members": [{"trial": m.trial, "family": m.family, "weight": m.weight} for m in members],
                    "rounds": selection.rounds, "selected_on": kind,
                    "validation": {plan.objective.name: selection.score},
                    "best_single_validation": {plan.objective.name: best_value}}
        single = _member_model(ctx, candidates[0])[0].to(data.device)
        best_single = {"trial": best.number, "family": best_family.name,
                       "test": ev.compute(ev.y_test, data.predict(single, ctx.rows["test"], bs)),
                       "note": "the best trial's own predictions, before the domain's calibration"}
        log.info("final model: an ensemble of %d trials (%s), %s %.4f on the held-out rows against %.4f for the best "
                 "trial alone", len(members), ", ".join(f"{m.trial}: {m.weight:.2f}" for m in members),
                 plan.objective.name, selection.score, best_value)
    if searched is not None and len(prepared.test):
        refit["test_searched"] = ev.compute(ev.y_test, data.predict(searched.to(data.device), ctx.rows["test"], bs))
        log.info("refit %d of %d member(s) on all %d development rows: test %s %.4f against %.4f as searched",
                 refit["members"], len(chosen), refit["rows"], plan.objective.name,
                 ev.metrics.get(plan.objective.name) or float("nan"),
                 refit["test_searched"].get(plan.objective.name) or float("nan"))
    elif searched is not None:
        log.info("refit %d of %d member(s) on all %d development rows", refit["members"], len(chosen), refit["rows"])
    if plan.domain.evaluate is not None:
        plan.domain.evaluate(ev)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    latency = sum(float((TrialRecord.of(by_number[m.trial]).measured or {}).get("latency_ms") or 0.0)
                  for m in members if m.trial in by_number)
    constraints = _final_constraints(ctx, ev, val_rows, front, latency)
    fairness = _fairness(ev, ctx.cfg.seed)
    report = FinalReport(
        test=dict(ev.metrics), validation=ev.compute(ev.y_val, ev.p_val), ci95=dict(ev.ci95),
        details=dict(ev.details), n_test=int(len(prepared.test)),
        validation_rows=f"{kind} ({len(val_rows)} rows)",
        model={"family": best_family.name if len(members) == 1 else "ensemble", "best_trial": best.number,
               "objective": plan.objective.name,
               "members": [{"trial": m.trial, "family": m.family, "weight": m.weight, "folds": m.folds}
                           for m in members]},
        ensemble=ensemble, best_single=best_single, refit=refit, fairness=fairness, constraints=constraints,
        privacy=_privacy(ctx, study, members[0].trial, retrained=not chosen),
    )
    options = dataclasses.asdict(plan.options) if dataclasses.is_dataclass(plan.options) else None
    meta = PredictorMeta(
        pipeline=plan.pipeline.name, domain=plan.domain.name, task=info.task, info=dataclasses.asdict(info),
        members=members, objective=plan.objective.name, domain_options=options,
        validation_value=selection.score if ensemble else best_value,
        threshold=ev.threshold, calibration=ev.calibration, notes=dict(ev.notes),
    )
    fmt.save(ctx.run_dir / PREDICTOR_DIR, prepared, meta, model.state_dict())
    seal(ctx.run_dir / PREDICTOR_DIR, requirements(ctx.host, plan.domain.name, sorted({m.family for m in members})))
    _keep_only(ctx, {c.trial.number for c in candidates} | {m.trial for m in members})
    return FinalModel(best.number, best_value, best_family.name, dict(best.params), report)


def _best_trial(ctx: "SearchContext", study: "optuna.Study") -> tuple[Any, Optional[list[int]]]:
    """The best feasible trial, and in a multi-objective study the Pareto front it was picked from (numbers)."""
    import math

    from optuna.trial import TrialState

    from automl.errors import AutoMLError

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if all(v is not None and math.isfinite(v) for v in t.values)]
    feasible = [t for t in done if t.user_attrs.get("feasible") is not False]
    if not feasible:
        closest = min(done, key=lambda t: sum(max(0.0, v) for v in t.user_attrs.get("constraint_violations") or [1]))
        missed = "; ".join(f"{k} {v:.4g}" for k, v in (TrialRecord.of(closest).measured or {}).items())
        raise AutoMLError(f"no trial met search.constraints={ctx.cfg.search.constraints} on validation ({len(done)} "
                          f"completed; the closest, trial {closest.number}, measured {missed}): relax the "
                          "constraints or search longer")
    r = ctx.plan.requirements
    if r is None or not r.multi:
        maximize = ctx.plan.objective.direction == "maximize"
        return min(feasible, key=lambda t: (-t.value if maximize else t.value, t.number)), None
    signs = [-1.0 if d == "maximize" else 1.0 for d in r.directions]
    costs = {t.number: [s * v for s, v in zip(signs, t.values)] for t in feasible}
    front = [t for t in feasible if not any(
        all(a <= b for a, b in zip(costs[o.number], costs[t.number])) and costs[o.number] != costs[t.number]
        for o in feasible)]
    if ctx.cfg.search.pick == "balanced":  # closest to the ideal point, each objective scaled over the front
        lows = [min(costs[t.number][i] for t in front) for i in range(len(signs))]
        highs = [max(costs[t.number][i] for t in front) for i in range(len(signs))]

        def distance(t: Any) -> float:
            return sum(((c - lo) / (hi - lo) if hi > lo else 0.0) ** 2
                       for c, lo, hi in zip(costs[t.number], lows, highs))

        picked = min(front, key=lambda t: (distance(t), t.number))
    else:  # first: the best on the first objective
        picked = min(front, key=lambda t: (costs[t.number][0], t.number))
    log.info("Pareto front of %s: trials %s; picked trial %d (search.pick=%s)", ", ".join(r.objectives),
             ", ".join(str(t.number) for t in sorted(front, key=lambda t: t.number)), picked.number,
             ctx.cfg.search.pick)
    return picked, sorted(t.number for t in front)


def _feasible_ensemble(ctx: "SearchContext", candidates: list[Candidate], selection: Any) -> Any:
    """An ensemble of feasible trials may still miss a constraint (a threshold shifts, latencies add up): then
    the best trial alone."""
    r = ctx.plan.requirements
    chosen = [(candidates[i], w) for i, w in selection.weights.items()]
    p = sum(w * c.predictions for c, w in chosen)
    rows = chosen[0][0].rows
    side = {k: v[rows] for k, v in ctx.prepared.side.items()}
    latency = sum(float((c.record.measured or {}).get("latency_ms") or 0.0) for c, _ in chosen)
    judged = r.judge(ctx.data.targets(rows), p, side, (lambda: latency) if r.measures_latency else None)
    if judged.feasible:
        return selection
    log.info("the ensemble misses %s on validation: the final model is the best feasible trial alone",
             "; ".join(judged.missed))
    return None


def _final_constraints(ctx: "SearchContext", ev: Evaluation, val_rows: Any, front: Optional[list[int]],
                       latency: float) -> Optional[dict[str, Any]]:
    """How the final model meets the constraints on validation, at the threshold it will apply (`latency`: its
    members' measured latencies added up); a binary model without a domain threshold gets the one the
    constraints chose."""
    r = ctx.plan.requirements
    if r is None:
        return None
    side = {k: v[val_rows] for k, v in ctx.prepared.side.items()}
    if not r.measures_latency:
        latency = None
    if ev.threshold is None and any(c.kind in ("rate", "fairness") for c in r.constraints):
        ev.threshold = r.judge(ev.y_val, ev.p_val, side).threshold
    judged = r.judge(ev.y_val, ev.p_val, side, (lambda: latency) if latency is not None else None,
                     threshold=ev.threshold)
    if not judged.feasible:
        log.warning("the final model misses %s on validation at its threshold %s (the domain's operating point "
                    "takes precedence)", "; ".join(judged.missed), ev.threshold)
    out: dict[str, Any] = {"constraints": [c.text for c in r.constraints], "judged_on": "validation",
                           "threshold": ev.threshold, "values": judged.values, "feasible": judged.feasible,
                           "missed": judged.missed}
    if front is not None:
        out.update(objectives=r.objectives, pareto_front=front, pick=ctx.cfg.search.pick)
    return out


def _fairness(ev: Evaluation, seed: int) -> dict[str, Any]:
    """Group fairness of the decision on test for every sensitive attribute (binary tasks)."""
    if not ev.side_test or not ev.has_test:
        return {}
    if ev.task != "binary":
        log.info("fairness is reported for binary decisions; this %s task's sensitive attribute(s) %s are left out "
                 "of the model and not analysed", ev.task, ", ".join(ev.side_test))
        return {}
    from automl.fairness import fairness_report

    threshold = ev.threshold if ev.threshold is not None else 0.5
    report = fairness_report(ev.y_test, ev.p_test, threshold, ev.side_test, ev.side_val, seed=seed)
    for name, r in report.items():
        ci = r["ci95"].get("demographic_parity_difference")
        log.info("fairness on %s at threshold %.3f (test): demographic parity difference %.3f%s, equal opportunity "
                 "difference %.3f, equalised odds difference %.3f (%d groups compared)", name, threshold,
                 r["demographic_parity_difference"], f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "",
                 r["equal_opportunity_difference"], r["equalized_odds_difference"], len(r["compared_groups"]))
    return report


def _privacy(ctx: "SearchContext", study: "optuna.Study", member: int, retrained: bool) -> Optional[dict[str, Any]]:
    """Under `privacy.epsilon`, the released model's DP accounting and the search's composition (the final model
    is one trial then: `SearchContext.ensembles`)."""
    if ctx.cfg.privacy.epsilon is None:
        return None
    from automl.search.privacy import final_privacy

    return final_privacy(ctx, study, member, retrained)


def _rows(ctx: "SearchContext", rows: "np.ndarray") -> Any:
    import torch

    return torch.as_tensor(rows, dtype=torch.long, device=ctx.data.device)


def _candidates(ctx: "SearchContext", study: "optuna.Study") -> list[Candidate]:
    """The best completed trials whose files are there (best first), with their held-out predictions."""
    import math

    from optuna.trial import TrialState
    from safetensors.torch import load_file

    maximize = ctx.plan.objective.direction == "maximize"
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and math.isfinite(t.values[0]) and t.user_attrs.get("feasible") is not False]
    done.sort(key=lambda t: (-t.values[0] if maximize else t.values[0], t.number))
    out = []
    for trial in done[: ctx.candidates]:
        path = weights_path(ctx.run_dir, trial.number)
        if not path.exists():
            continue
        state = load_file(str(path))
        if is_cross_validated(state) != bool(ctx.folds):  # from before the study's data changed its scheme
            continue
        record = TrialRecord.of(trial)
        try:
            family = ctx.host.model_families.get(record.family)
        except Exception:  # noqa: BLE001 - a family no installed plugin provides any more: not a candidate
            continue
        if ctx.folds:
            _, predictions, rows = split_fold_state(state)
        else:
            predictions, rows = (state[PREDICTIONS].numpy() if PREDICTIONS in state else None), ctx.prepared.val
        out.append(Candidate(trial, record, family, state, rows, predictions))
    return out


def _select(ctx: "SearchContext", candidates: list[Candidate]) -> Any:
    """Ensemble selection over the candidates, or None for the best trial alone."""
    from automl.search.ensemble import select

    fmt = ctx.plan.pipeline.predictor_format()
    size = ctx.cfg.search.ensemble.size
    if size == 0 or len(candidates) < 2 or any(c.predictions is None for c in candidates):
        return None
    if fmt.declines_averaging:
        log.info("no ensemble: %s", fmt.declines_averaging)
        return None
    objective = ctx.plan.objective
    y = ctx.data.targets(candidates[0].rows)
    return select([c.predictions for c in candidates], y, objective.fn, objective.direction == "maximize", size)


def _member_model(ctx: "SearchContext", candidate: Candidate) -> tuple[Any, int]:
    """A candidate's trained model (its fold models averaged in a cross-validated study) and its fold count."""
    info = ctx.prepared.info
    family, record = candidate.family, candidate.record
    if not is_cross_validated(candidate.state):
        model = family.create(record.params, info)
        model.load_state_dict(weights_only(candidate.state))
        return model, 0
    states, oof, oof_rows = split_fold_state(candidate.state)
    models = [family.create(record.params, info) for _ in states]
    for m, state in zip(models, states):
        m.load_state_dict(state)
    combined = ctx.plan.pipeline.predictor_format().combine(models, [1.0] * len(models), info)
    if combined is not None:
        return combined, len(models)
    return _refit_folds(ctx, family, record, ctx.cfg.seed + candidate.trial.number, int(record.best_epoch or 1)), 0


#: Seconds a run keeps after its last refit for the test evaluation and the files.
FILES_S = 2.0


def _refits(ctx: "SearchContext", front: Optional[list[int]]) -> bool:
    """Whether the final model's members train once more on all development rows: asked for
    (`search.ensemble.refit`), a single-split study (a cross-validated one's members are fold models, each on
    most of the rows, already averaged), a pipeline whose validation rows are ordinary rows, and nothing judged
    on the searched model's own validation predictions (constraints, a Pareto pick, a privacy budget)."""
    r = ctx.plan.requirements
    return (ctx.cfg.search.ensemble.refit and not ctx.folds and ctx.plan.pipeline.refits and front is None
            and not (r is not None and r.constraints) and ctx.cfg.privacy.epsilon is None)


def _refit_members(ctx: "SearchContext", chosen: list[tuple[Candidate, float]],
                   models: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Each member trained again on all development rows (training and validation) for its best epoch count, as
    AutoGluon's `refit_full` does and as the LightGBM a user tunes by cross-validation is refit: the rows that only
    chose the model now train it too (a quarter more rows at the default split). Ensemble weights, calibration and
    operating points stay those chosen on the searched models' validation predictions. Heaviest member first,
    while the run's budget (`ctx.finish_by`) allows: a member whose refit would not end in time keeps its
    searched model."""
    import time

    from automl.training.engine import Pruned

    dev = ctx.prepared.development_rows()
    scale = len(dev) / max(1, len(ctx.prepared.train))
    out, done, epochs = list(models), 0, []
    for i in sorted(range(len(chosen)), key=lambda i: -chosen[i][1]):
        candidate = chosen[i][0]
        record = candidate.record
        n = int(record.best_epoch or 0)
        if n < 1:
            continue
        if ctx.finish_by is not None:
            # the trial's own time per epoch, on the larger rows (its evaluations included: a refit evaluates too)
            cost = float(record.fit_s or 0.0) / max(1, int(record.epochs or n)) * n * scale
            if time.time() + cost > ctx.finish_by - FILES_S:
                continue
        try:
            out[i] = _refit(ctx, candidate.family, record, ctx.cfg.seed + candidate.trial.number, n, dev,
                            until=None if ctx.finish_by is None else ctx.finish_by - FILES_S)
        except Pruned:  # slower than its trial: the searched model stays
            continue
        done += 1
        epochs.append({"trial": candidate.trial.number, "epochs": n})
    return out, {"members": done, "rows": int(len(dev)), "epochs": epochs}


def _retrain_best(ctx: "SearchContext", best: "optuna.trial.FrozenTrial") -> tuple[Any, Any, Any, str, list[int]]:
    """The best parameters trained again (the trial's file is missing: it ran on another machine)."""
    import torch

    record = TrialRecord.of(best)
    family = ctx.host.model_families.get(record.family)
    seed = ctx.cfg.seed + best.number
    if ctx.folds:
        log.info("replaying the folds of the best parameters (trial %d)", best.number)
        cv = ctx.cross_validate(family, record.params, record.hp, seed)
        combined = ctx.plan.pipeline.predictor_format().combine(cv.models, [1.0] * len(cv.models), ctx.prepared.info)
        if combined is not None:
            return combined, cv.oof_rows, cv.oof, BAGGED, [len(cv.models)]
        model = _refit_folds(ctx, family, record, seed, cv.median_best_epoch)
        return model, cv.oof_rows, cv.oof, "out-of-fold over the development rows", [0]
    log.info("training the best parameters (trial %d) once more on the training rows", best.number)
    torch.manual_seed(seed)
    trained = ctx.new_model(family, record.params, record.hp)
    result = ctx.fit(trained, record.hp, seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val)
    model = family.create(record.params, ctx.prepared.info)
    model.load_state_dict(result.state_dict)
    return model, ctx.prepared.val, None, "validation split", [0]


def _refit_folds(ctx: "SearchContext", family: "ModelFamily", record: TrialRecord, seed: int, epochs: int) -> Any:
    """A cross-validated study whose pipeline cannot average its fold models: one model on all development rows."""
    rows = ctx.prepared.development_rows()
    log.info("cross-validated study: the final model is trained on all %d development rows for %d epochs (the "
             "folds' median best)", len(rows), epochs)
    return _refit(ctx, family, record, seed, epochs, rows)


def _refit(ctx: "SearchContext", family: "ModelFamily", record: TrialRecord, seed: int, epochs: int,
           rows: "np.ndarray", until: Optional[float] = None) -> Any:
    """One model of `record`'s parameters on `rows` for exactly `epochs` epochs, its last kept; with `until` (a
    `time.time()`), `Pruned` if training is still going then."""
    import time

    import torch

    from automl.training.engine import Pruned

    def check(epoch: int, step: int, steps: int) -> None:
        if until is not None and time.time() >= until:
            raise Pruned("the run's budget ended during the refit")

    dev = torch.as_tensor(rows, dtype=torch.long, device=ctx.data.device)
    torch.manual_seed(seed)
    trained = ctx.new_model(family, record.params, record.hp)
    result = ctx.fit(trained, record.hp, seed, dev, dev, ctx.data.targets(rows),
                     trainer=refit_trainer(ctx.cfg.trainer, epochs), keep_last=True, check=check)
    model = family.create(record.params, ctx.prepared.info)
    model.load_state_dict(result.state_dict)
    return model


def _keep_only(ctx: "SearchContext", numbers: set[int]) -> None:
    """Files of trials that are neither candidates nor members are deleted; the rest stay for a continued
    study (its ensemble may draw on them)."""
    keep = {weights_path(ctx.run_dir, n) for n in numbers}
    for path in (ctx.run_dir / WEIGHTS_DIR).glob("trial_*.safetensors"):
        if path not in keep:
            path.unlink(missing_ok=True)
