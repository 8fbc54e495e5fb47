"""Differential privacy at the search's level: which families DP-SGD can train here, the run's privacy settings
for each fit, and what a finished search reports (the released model's accounting, the composition over every
trial trained on the same rows, what the guarantee does not cover). The DP-SGD training itself is
`automl.training.private`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import ConfigError
from automl.training.private import (ACCOUNTANT, CLIP, MECHANISM, NOT_COVERED, Privacy, PrivacyUnsupported,
                                     epsilon_of, plan_noise, probe)

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.search.context import SearchContext

log = logging.getLogger(__name__)


def private_families(ctx: "SearchContext") -> list[str]:
    """The plan's families that DP-SGD can train (checked once per search process on a configuration of each,
    sampled at random, and kept on the context), logging the others with the reason; one line when none can."""
    if ctx.private_declined is None:
        import torch

        declined: dict[str, str] = {}
        for family in ctx.plan.families:
            try:
                with torch.random.fork_rng():  # the probe must not move the trials' random streams
                    params = _sampled(family, ctx.prepared.info)
                    probe(family.create(params, ctx.prepared.info), ctx.data, ctx.rows["train"], {})
            except PrivacyUnsupported as exc:
                declined[family.name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - a family that cannot even be built fails in its own trials
                log.debug("privacy probe of %s: %s", family.name, exc)
        if declined:
            log.info("privacy: left out of this search (DP-SGD cannot train them): %s",
                     "; ".join(f"{n}: {why}" for n, why in declined.items()))
        ctx.private_declined = declined
    names = [f.name for f in ctx.plan.families if f.name not in ctx.private_declined]
    if not names:
        raise PrivacyUnsupported("privacy.epsilon: no model family of this search can be trained with DP-SGD: "
                                 + "; ".join(f"{n}: {why}" for n, why in ctx.private_declined.items()))
    return names


def _sampled(family: Any, info: Any) -> dict[str, Any]:
    """One configuration of `family`, drawn at random from its search space (a throwaway in-memory study)."""
    import optuna

    from automl.search.context import FamilyTrial

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    finally:
        optuna.logging.set_verbosity(level)
    return family.search_space(FamilyTrial(trial, family.name), info)


def declined_message(ctx: "SearchContext") -> str:
    """Why the families left out under privacy are (for a queued configuration that names one)."""
    declined = ctx.private_declined or {}
    return ("this queued configuration names a family that DP-SGD cannot train: "
            + "; ".join(f"{n}: {why}" for n, why in declined.items()))


# -- what a finished search reports -------------------------------------------------------------------------------


def final_privacy(ctx: "SearchContext", study: "optuna.Study", member: int, retrained: bool) -> dict[str, Any]:
    """`metrics.json` `privacy`: the released model's accounting, the search's composition over every trial
    trained on the same rows, and what the guarantee does not cover."""
    from automl.records import TrialRecord

    privacy = Privacy.of(ctx.cfg.privacy.epsilon, ctx.cfg.privacy.delta, len(ctx.prepared.train))
    assert privacy is not None
    trials = study.get_trials(deepcopy=False)
    record = next((TrialRecord.of(t) for t in trials if t.number == member), TrialRecord())
    extra: list[tuple[float, float, int]] = []
    if record.privacy and not retrained:
        model = {"trial": member, **record.privacy}
    else:  # trained again (its file was elsewhere): bounded by its whole planned run, and one more fit to compose
        plan = plan_noise(privacy, len(ctx.prepared.train), int((record.hp or {})["batch_size"]),
                          ctx.cfg.trainer.max_epochs)
        extra = plan.history
        model = {"trial": member, "epsilon": round(epsilon_of(plan.history, privacy.delta), 4),
                 "delta": privacy.delta, "noise_multiplier": round(plan.noise_multiplier, 6),
                 "sample_rate": plan.sample_rate, "steps": plan.steps, "accountant": ACCOUNTANT,
                 "note": "trained again for the final model; bounded by its full planned run"}
    search = search_accounting(ctx, trials, privacy, extra)
    return {
        "mechanism": MECHANISM,
        "epsilon_target": privacy.epsilon,
        "delta": privacy.delta,
        "delta_default": ctx.cfg.privacy.delta is None,
        "protects": f"the {len(ctx.prepared.train)} training rows (add/remove one row)",
        "guarantee": f"({privacy.epsilon:g}, {privacy.delta:.3g})-DP for the released weights, fixed before training "
                     "by the planned steps; model.epsilon is the accountant's reading for the steps taken (lower when "
                     "early stopping ended training sooner: a reading after a data-dependent stop, not a second "
                     "guarantee)",
        "model": model,
        "search": search,
        "input_maps": "quantile knots and bins fitted on a public reference sample (standard normal values, fixed "
                      "seed), not on the training rows",
        "ensemble": "one trial, not an ensemble: k members trained on the same rows would compose (the accountant's "
                    "epsilon of k runs, more than one run's)",
        "not_covered": list(NOT_COVERED),
        "opacus": _version("opacus"),
    }


def search_accounting(ctx: "SearchContext", trials: list[Any], privacy: Privacy,
                      extra: Optional[list[tuple[float, float, int]]] = None) -> dict[str, Any]:
    """Every trial of the study trained on the same rows, and the released model was chosen among them: the
    bound that covers the whole search is their composition (RDP composes by adding). A completed trial counts
    the steps it took; a pruned one the epochs it recorded; any other that may have trained counts its whole
    planned run (an upper bound). A trial trained without privacy leaves the search unbounded."""
    from optuna.trial import TrialState

    from automl.records import TrialRecord

    history: list[tuple[float, float, int]] = []
    counted, public = 0, []
    n_train, epochs = len(ctx.prepared.train), ctx.cfg.trainer.max_epochs
    for t in trials:
        rec = TrialRecord.of(t)
        if rec.family is None or t.state == TrialState.WAITING:
            continue  # never sampled: nothing trained
        if (rec.fail_reason or "").startswith((PrivacyUnsupported.__name__, ConfigError.__name__)):
            continue  # declined before its first step
        if CLIP not in (rec.hp or {}):
            public.append(t.number)
            continue
        counted += 1
        if rec.privacy:
            p = rec.privacy
            history.append((p["noise_multiplier"], p["sample_rate"], int(p["steps"])))
            continue
        plan = plan_noise(privacy, n_train, int(rec.hp["batch_size"]), epochs)
        steps = plan.steps if not (t.state == TrialState.PRUNED and rec.epochs) else rec.epochs * plan.steps_per_epoch
        history.append((plan.noise_multiplier, plan.sample_rate, min(steps, plan.steps)))
    history += extra or []
    out: dict[str, Any] = {"fits": counted + len(extra or []), "delta": privacy.delta}
    if public:
        out.update(epsilon=None, note=f"trial(s) {', '.join(map(str, public[:10]))} trained on these rows without "
                                      "privacy: the search as a whole has no bound")
    else:
        out.update(epsilon=round(epsilon_of(history, privacy.delta), 4),
                   note="composition over every trial trained on the training rows (the bound that also covers "
                        "the choice among them)")
    return out


def _version(dist: str) -> Optional[str]:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
