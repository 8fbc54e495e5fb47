"""What a round of trials does: sample each, train those that share a structure as one model, tell the study.

A search process asks the study for several trials at once (Optuna's ask-and-tell; TPE samples them with a
constant liar, so concurrent asks are not copies of each other). Each trial picks a model family (itself a
searched parameter, so every architecture competes in one study), samples its architecture (namespaced:
`mlp.depth`) and the training hyperparameters (shared: `lr`). The round's first sampled trial leads it: the
others take its family and the architecture its family shares (`ModelFamily.round_shares`: depth, width,
embedding) and sample the rest, so a round is one architecture under several training settings, as HFTA
tunes (Wang et al., MLSys 2021); places that pruned members free early in the round go to new trials of the
same architecture (continuous batching). `RoundPlan` says when rounds begin and how large they are. Trials
of a stackable family whose structure matches
(`ModelFamily.stack_key`, the batch size) become the members of one stacked model and train together
(`automl.training.vectorised`); so do the k fold models of a cross-validated trial. Every other trial trains
alone with the configured engine. Each trial stays an Optuna trial with its own parameters, value, state and
record: the leaderboard cannot tell a batched trial from a single one.

A trial that raises or diverges is recorded as failed with its reason and the study goes on; one that the
pruner stops, or that is still training at the search's deadline, is recorded as pruned. A completed trial
among the best `search.ensemble.candidates` leaves its weights and its validation (or out-of-fold)
predictions in `trials/`, for the final model and the ensemble.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator, Optional

from automl.records import TrialRecord
from automl.search.context import (FamilyTrial, fold_state, out_of_fold, save_weights, split_state)
from automl.training.device import release_memory
from automl.training.engine import Diverged, Pruned

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.search.constraints import Judgement
    from automl.search.context import SearchContext
    from automl.search.study import Heartbeat, StudyLock
    from automl.specs import ModelFamily
    from automl.stopping import StopRequest

log = logging.getLogger(__name__)


@dataclass
class Sampled:
    """A trial with its family, architecture, training hyperparameters and seed."""

    trial: "optuna.Trial"
    family: "ModelFamily"
    params: dict[str, Any]
    hp: dict[str, Any]
    seed: int


@dataclass
class Outcome:
    """How a trial ended: its state ("complete", "pruned", "fail") and value (values: one per objective of a
    multi-objective study)."""

    trial: "optuna.Trial"
    state: str
    value: Optional[float] = None
    values: Optional[list[float]] = None


class Budget:
    """Which trials this process may start: the run's total, counted in the study under the `StudyLock` (so the
    total is exact across the run's worker processes), the search's deadline, and a stop request (Ctrl-C, SIGTERM). Database storages also get heartbeats for this process's running trials and
    have dead processes' trials failed and queued again (`automl.search.resume.requeue_stale`)."""

    def __init__(self, key: str, target: Optional[int], deadline: Optional[float], lock: "StudyLock",
                 stop: Optional["StopRequest"] = None, processes: int = 1) -> None:
        from automl.stopping import StopRequest

        self.key, self.target, self.deadline, self.lock = key, target, deadline, lock
        self.processes = max(1, processes)  # the run's search processes, which share the trials left
        self.stop = stop if stop is not None else StopRequest()
        self.heartbeat: Optional["Heartbeat"] = None

    def ask(self, study: "optuna.Study", wanted: int,
            lead: Optional[Callable[["optuna.Trial"], Optional[dict[str, Any]]]] = None,
            shared: Optional[dict[str, Any]] = None) -> list["optuna.Trial"]:
        """Up to `wanted` new trials; none once the total, the deadline or a stop request says so. `lead` and
        `shared`: as `automl.search.resume.ask` (the round's first sampled trial sets the architecture the others
        share; `shared`, the architecture of a round being refilled)."""
        from automl.search.resume import ask, counted, fail_stale

        if self.stop or (self.deadline is not None and time.time() >= self.deadline):
            return []
        if self.heartbeat is None:
            from automl.search.study import Heartbeat

            self.heartbeat = Heartbeat(study)
        with self.lock:
            fail_stale(study)  # database storages: a dead process's trials, with the reason; a no-op otherwise
            left = None if self.target is None else self.target - counted(study.get_trials(deepcopy=False), self.key)
            # the last trials are shared out between the processes, so that none ends long after the others
            n = wanted if left is None else max(0, min(wanted, left, math.ceil(left / self.processes)))
            asked = ask(study, self.key, n, lead, shared)
        for trial in asked:
            self.heartbeat.add(trial._trial_id)
        return asked

    def done(self, trial: "optuna.Trial") -> None:
        if self.heartbeat is not None:
            self.heartbeat.discard(trial._trial_id)

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.close()


def run_trials(ctx: "SearchContext", study: "optuna.Study", budget: Budget, plan: "RoundPlan",
               on_trial: Callable[[Any, Any], None], progress: Optional[Callable[[str], None]] = None) -> None:
    """Rounds of trials as `plan` says until the budget is spent; `on_trial(study, frozen_trial)` after each.

    A stop request ends the search at the next safe point: the trials it cut short are recorded as interrupted
    (their parameters queued to run again) and `Interrupted` is raised."""
    from optuna.trial import TrialState

    from automl.errors import Interrupted
    from automl.search.resume import interrupt

    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    trials = TrialRound(ctx, budget.deadline, budget.stop, progress, plan.max_weights)
    running: dict[int, "optuna.Trial"] = {}

    def refill(n: int, shared: dict[str, Any]) -> list["optuna.Trial"]:
        asked = budget.ask(study, n, shared=shared)
        running.update((t.number, t) for t in asked)
        return asked

    trials.ask = refill

    def finished(study: "optuna.Study") -> int:
        if plan.warmup == 0 or plan.size == 1:  # nothing to count: the size never changes
            return plan.warmup
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))

    try:
        while asked := budget.ask(study, size := plan.size_now(finished(study)), trials.lead if size > 1 else None):
            running.clear()
            running.update((t.number, t) for t in asked)
            try:
                for outcome in trials.run(asked):
                    value = (outcome.values or outcome.value) if outcome.state == "complete" else None
                    frozen = study.tell(outcome.trial, value, state=states[outcome.state])
                    running.pop(outcome.trial.number, None)
                    budget.done(outcome.trial)
                    on_trial(study, frozen)
            except KeyboardInterrupt as exc:
                stop = exc if isinstance(exc, Interrupted) else Interrupted("Ctrl-C (KeyboardInterrupt)")
                with budget.lock:
                    for t in running.values():
                        interrupt(study, t._trial_id, t.number, t.params, t.user_attrs, stop.reason)
                        budget.done(t)
                if running:
                    log.warning("%s: trial(s) %s interrupted (their parameters run again when the same command "
                                "runs again)", stop.reason, ", ".join(map(str, running)))
                raise stop from None
        budget.stop.check()
    finally:
        budget.close()


def member_weights(s: Sampled, info: Any) -> int:
    """Trainable weights of one member of `s`'s stacked network (built on the CPU, not trained)."""
    net = s.family.stack([s.params], info)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


class TrialRound:
    """Runs one round of asked trials (see the module docstring)."""

    #: How often, at most, where a long trial is goes to the progress display.
    PROGRESS_EVERY_S = 1.0

    def __init__(self, ctx: "SearchContext", deadline: Optional[float] = None, stop: Optional["StopRequest"] = None,
                 progress: Optional[Callable[[str], None]] = None, max_weights: Optional[int] = None) -> None:
        from automl.stopping import StopRequest

        self.ctx, self.deadline, self.max_weights = ctx, deadline, max_weights
        #: (n, shared) -> up to n new trials with `shared` fixed: where a round's places are refilled from
        self.ask: Optional[Callable[[int, dict[str, Any]], list["optuna.Trial"]]] = None
        self._round: Optional[tuple[int, dict[str, Any]]] = None  # this round's leader and what it shares
        self.stop = stop if stop is not None else StopRequest()
        self.progress = progress
        self._shown = 0.0
        self._sampled: dict[int, Sampled] = {}  # trials sampled when they led their round (`lead`)

    def run(self, trials: list["optuna.Trial"]) -> Iterator[Outcome]:
        """Each trial's outcome as soon as it is known (a group of stacked trials ends together)."""
        groups: dict[Hashable, list[Sampled]] = {}
        for trial in trials:
            try:
                sampled = self._sampled.pop(trial.number, None) or self._sample(trial)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - a space that raises fails its trial, not the study
                yield self._fail(trial, exc)
                continue
            groups.setdefault(self._group_key(sampled), []).append(sampled)
        leader, shared = self._round or (None, None)
        self._round = None
        for key, group in groups.items():
            if isinstance(key, tuple) and key[0] == "stack":
                yield from self._stacked(group, shared if any(s.trial.number == leader for s in group) else None)
                release_memory(self.ctx.device)  # stacks of ever-new sizes fragment the heap
            else:
                for s in group:
                    yield self._single(s)

    def _check(self, numbers: list[int]) -> Callable[[int, int, int], None]:
        """Polled every few training steps: a stop request raises `Interrupted`, the deadline `Pruned`; on long
        epochs, at most once a second, where training is."""
        label = f"trial {numbers[0]}" if len(numbers) == 1 else f"trials {numbers[0]}-{numbers[-1]}"

        def check(epoch: int, step: int, steps: int) -> None:
            self.stop.check()
            now = time.time()
            if self.deadline is not None and now >= self.deadline:
                raise Pruned("stopped at the search's deadline")
            if self.progress is not None and step and now - self._shown >= self.PROGRESS_EVERY_S:
                self._shown = now
                self.progress(f"{label}: epoch {epoch}, {100 * step // max(1, steps)}%")

        return check

    # -- sampling ----------------------------------------------------------------------------------------

    def lead(self, trial: "optuna.Trial") -> Optional[dict[str, Any]]:
        """Sample the round's first trial; return the architecture the round's other trials take from it (its
        family and the family's `round_shares`), so that the round trains as one stack without padding. None ends
        the round at this trial: its family does not stack, its network is wider than stacking pays for on this
        device (`max_weights`), or its space raised (it fails in `run`)."""
        try:
            s = self._sample(trial)
        except (Exception, SystemExit):  # noqa: BLE001 - sampled again, and failed with the reason, in `run`
            return None
        self._sampled[trial.number] = s
        if s.family.stack is None or not self.ctx.stacks or not s.family.round_shares:
            return None
        if self.max_weights is not None and member_weights(s, self.ctx.prepared.info) > self.max_weights:
            return None
        names = ["family"] + [f"{s.family.name}.{p}" for p in s.family.round_shares]
        shared = {name: trial.params[name] for name in names if name in trial.params}
        self._round = (trial.number, shared)
        return shared

    def _sample(self, trial: "optuna.Trial") -> Sampled:
        ctx = self.ctx
        names = [f.name for f in ctx.plan.families]
        private = ctx.cfg.privacy.epsilon is not None
        if private:  # only the families DP-SGD can train (the others are logged once, with the reason)
            from automl.search.privacy import declined_message, private_families
            from automl.training.private import CLIP, CLIP_RANGE, PrivacyUnsupported

            names = private_families(ctx)
        try:
            name = names[0] if len(names) == 1 else trial.suggest_categorical("family", names)
        except ValueError:
            if not private:
                raise
            raise PrivacyUnsupported(declined_message(ctx)) from None
        family = ctx.plan.family(name)
        info = ctx.prepared.info
        params = family.search_space(FamilyTrial(trial, family.name), info)
        hp = ctx.plan.pipeline.training_space(trial, info)
        if private:  # DP-SGD's per-row clipping norm: too small biases every step, too large drowns it in noise
            hp[CLIP] = trial.suggest_float(CLIP, *CLIP_RANGE, log=True)
        TrialRecord(family=family.name, params=params, hp=hp).save(trial)
        # a re-run of an interrupted trial replays it: same parameters, same seed
        rerun_of = TrialRecord.of(trial).rerun_of
        return Sampled(trial, family, params, hp, ctx.cfg.seed + (trial.number if rerun_of is None else rerun_of))

    def _group_key(self, s: Sampled) -> Hashable:
        if s.family.stack is None or not self.ctx.stacks:
            return ("alone", s.trial.number)
        return ("stack", s.family.name, s.family.stack_key(s.params), s.hp.get("batch_size"))

    # -- trials trained together -------------------------------------------------------------------------

    def _stacked(self, group: list[Sampled], shared: Optional[dict[str, Any]] = None) -> list[Outcome]:
        """Train `group` as one stacked model. With `shared` (the round's leader is in the group), places that
        stopped members free are refilled with new trials of the same architecture (`self.ask`) while the round
        has trained fewer than `REFILL` times its first size in trials: the stack stays full, as continuous
        batching keeps a server's batch full. A refilled trial whose network cannot join (a different structure)
        trains after the round."""
        import numpy as np
        import torch

        from automl.tabular.stacked import keep_members
        from automl.training.vectorised import Member, StackedFit, fit_stacked

        ctx = self.ctx
        members, owner = [], []  # member -> (trial index in the group, fold or None)
        of_trial: list[list[int]] = []

        def add(s: Sampled) -> list[Member]:
            i, new = len(of_trial), []
            if ctx.folds:
                for f, (train, val, y_val) in enumerate(ctx.folds):
                    new.append(Member(s.hp, train, val, y_val, s.seed * 1000 + f))
                    owner.append((i, f))
            else:
                new.append(Member(s.hp, ctx.rows["train"], ctx.rows["val"], ctx.y_val, s.seed))
                owner.append((i, None))
            of_trial.append(list(range(len(members), len(members) + len(new))))
            members.extend(new)
            return new

        group = list(group)
        for s in group:
            add(s)
        stopped: set[int] = set()
        key, limit, apart, unsampled = self._group_key(group[0]), REFILL * len(group), [], []

        def report(steps: list[Optional[int]], values: list[Optional[float]]) -> set[int]:
            stop: set[int] = set()
            if self.multi:  # Optuna prunes single-objective studies only
                return stop
            reporting = {}
            for i, s in enumerate(group):
                # a trial's folds joined together, so the ones still training share its epoch; a fold that
                # stopped early has none
                training = [m for m in of_trial[i] if values[m] is not None and steps[m] is not None]
                if i in stopped or not training:
                    continue
                reporting[i] = steps[training[0]]
                s.trial.report(float(np.mean([values[m] for m in training])), reporting[i])
            for i, step in reporting.items():  # every member has reported this epoch before any is judged
                if group[i].trial.should_prune():
                    stopped.add(i)
                    TrialRecord.note(group[i].trial, epochs=step + 1)
                    stop |= set(of_trial[i])
            return stop

        def refill(free: int) -> Optional[tuple[list[Member], Any]]:
            per_trial = len(ctx.folds) if ctx.folds else 1
            n = min(free // per_trial, limit - len(group) - len(apart) - len(unsampled))
            if shared is None or self.ask is None or n < 1:
                return None
            joining: list[Sampled] = []
            for trial in self.ask(n, shared):
                try:
                    sampled = self._sample(trial)
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - fails its trial, after the round
                    unsampled.append((trial, exc))
                    continue
                (joining if self._group_key(sampled) == key else apart).append(sampled)
            if not joining:
                return None
            first = len(members)
            new = [m for s in joining for m in add(s)]
            group.extend(joining)
            # built padded as the whole stack is (its first members' sizes bound every later member's), then cut
            torch.manual_seed(joining[0].seed)
            extra = group[0].family.stack([group[i].params for i, _ in owner], ctx.prepared.info)
            keep_members(extra, range(first, len(members)))
            return new, extra

        started = time.perf_counter()
        try:
            torch.manual_seed(group[0].seed)
            model = group[0].family.stack([group[i].params for i, _ in owner], ctx.prepared.info)
            results = fit_stacked(StackedFit(
                model=model, data=ctx.data, members=list(members), trainer=ctx.cfg.trainer,
                objective=ctx.plan.objective, stopper=ctx.plan.stopper, report=report, deadline=self.deadline,
                check=self._check([s.trial.number for s in group]), refill=refill))
            predictions = ctx.data.stacked_predict(model, [m.val for m in members], ctx.cfg.trainer.eval_batch_size)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a model that cannot be built or trained fails its trials
            return [self._fail(s.trial, exc) for s in group] + [self._fail(t, e) for t, e in unsampled] + \
                [o for s in apart for o in self._stacked([s])]
        wall = time.perf_counter() - started
        if len(group) > 1 or len(members) > 1:
            log.debug("%d trials (%d models) trained as one in %.2f s", len(group), len(members), wall)
        outcomes = []
        for i, s in enumerate(group):
            mine = [results[m] for m in of_trial[i]]
            failed = next((r for r in mine if isinstance(r, Exception) and not isinstance(r, Pruned)), None)
            pruned = next((r for r in mine if isinstance(r, Pruned)), None)
            if failed is not None:
                outcomes.append(self._fail(s.trial, failed))
            elif pruned is not None:
                outcomes.append(self._pruned(s.trial, pruned))
            elif ctx.folds:
                fold_rows = [members[m].val.cpu().numpy() for m in of_trial[i]]
                oof, oof_rows = out_of_fold(list(zip(fold_rows, [predictions[m] for m in of_trial[i]])))
                scores = [r.value for r in mine]
                TrialRecord.note(s.trial, cv_scores=[round(v, 6) for v in scores], cv_std=float(np.std(scores)),
                                 best_epoch=max(1, int(round(float(np.median([r.best_epoch for r in mine]))))),
                                 epochs=int(max(r.epochs for r in mine)), fit_s=round(sum(r.fit_s for r in mine), 4),
                                 compute_s=round(sum(r.compute_s for r in mine), 4))
                value = float(np.mean(scores))
                judged = self._judge(s, ctx.data.targets(oof_rows), oof, oof_rows)
                self._keep(s.trial, value, lambda: fold_state([r.state_dict for r in mine], oof, oof_rows), judged)
                outcomes.append(self._complete(s.trial, value, judged))
            else:
                r, m = mine[0], of_trial[i][0]
                self._record(s.trial, r)
                judged = self._judge(s, ctx.y_val, predictions[m], ctx.prepared.val)
                self._keep(s.trial, r.value, lambda: self._split_state(r.state_dict, predictions[m]), judged)
                outcomes.append(self._complete(s.trial, r.value, judged))
        outcomes += [self._fail(t, e) for t, e in unsampled]
        return outcomes + [o for s in apart for o in self._stacked([s])]

    # -- a trial alone -----------------------------------------------------------------------------------

    def _single(self, s: Sampled) -> Outcome:
        import numpy as np
        import torch

        ctx = self.ctx
        try:
            if ctx.folds:
                n_folds = len(ctx.folds)

                def on_fold(k: int, mean: float) -> None:
                    if not self.multi:
                        s.trial.report(mean, k)
                    if not self.multi and s.trial.should_prune():
                        TrialRecord.note(s.trial, epochs=k + 1)
                        raise Pruned(f"pruned after fold {k + 1} of {n_folds}")
                    self._check_deadline(f"after fold {k + 1} of {n_folds}")

                cv = ctx.cross_validate(s.family, s.params, s.hp, s.seed, on_fold, self._check([s.trial.number]))
                TrialRecord.note(s.trial, cv_scores=[round(v, 6) for v in cv.scores],
                                 cv_std=float(np.std(cv.scores)), best_epoch=cv.median_best_epoch,
                                 epochs=int(max(cv.epochs)))
                value = float(np.mean(cv.scores))
                judged = self._judge(s, ctx.data.targets(cv.oof_rows), cv.oof, cv.oof_rows)
                self._keep(s.trial, value, lambda: fold_state([m.state_dict() for m in cv.models], cv.oof,
                                                              cv.oof_rows), judged)
                return self._complete(s.trial, value, judged)
            torch.manual_seed(s.seed)
            model = ctx.new_model(s.family, s.params, s.hp)
            result = ctx.fit(model, s.hp, s.seed, ctx.rows["train"], ctx.rows["val"], ctx.y_val,
                             self._reporter(s.trial), check=self._check([s.trial.number]))
        except Pruned as exc:
            return self._pruned(s.trial, exc)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of a trial is recorded, the study goes on
            return self._fail(s.trial, exc)
        self._record(s.trial, result)
        predicted: list[Any] = []

        def val_predictions() -> Any:  # once, when the ensemble or the constraints need them
            if not predicted:
                net = ctx.engine.network(model)
                net.load_state_dict(result.state_dict)
                predicted.append(ctx.data.predict(net, ctx.rows["val"], ctx.cfg.trainer.eval_batch_size))
            return predicted[0]

        def state() -> dict:
            return split_state(result.state_dict, val_predictions()) if ctx.ensembles else result.state_dict

        judged = self._judge(s, ctx.y_val, val_predictions(), ctx.prepared.val) \
            if ctx.plan.requirements is not None else None
        self._keep(s.trial, result.value, state, judged)
        return self._complete(s.trial, result.value, judged)

    def _reporter(self, trial: "optuna.Trial") -> Callable[[int, float], None]:
        """Each epoch's objective to the trial; the pruner's verdict, or the deadline, raises `Pruned`."""

        def report(step: int, value: float) -> None:
            if self.multi:  # Optuna prunes single-objective studies only
                self._check_deadline(f"after epoch {step + 1}")
                return
            trial.report(value, step)
            if trial.should_prune():
                TrialRecord.note(trial, epochs=step + 1)
                raise Pruned(f"pruned after epoch {step + 1}")
            self._check_deadline(f"after epoch {step + 1}")

        return report

    def _check_deadline(self, when: str) -> None:
        self.stop.check()
        if self.deadline is not None and time.time() >= self.deadline:
            raise Pruned(f"stopped at the search's deadline {when}")

    # -- outcomes ----------------------------------------------------------------------------------------

    def _split_state(self, state_dict: dict, predictions: Any) -> dict:
        """A split trial's file: its weights, and its validation predictions when an ensemble may use them."""
        return split_state(state_dict, predictions) if self.ctx.ensembles else state_dict

    @staticmethod
    def _record(trial: "optuna.Trial", result: Any) -> None:
        privacy = getattr(result, "privacy", None)  # DP-SGD's accounting (automl.training.private)
        TrialRecord.note(trial, best_epoch=result.best_epoch, epochs=result.epochs, fit_s=round(result.fit_s, 4),
                         compute_s=round(result.compute_s, 4),
                         **({"epsilon": privacy["epsilon"], "privacy": privacy} if privacy else {}))

    def _keep(self, trial: "optuna.Trial", value: float, state: Callable[[], dict],
              judged: Optional["Judgement"] = None) -> None:
        """Save the trial's file when it ranks among the ensemble's candidates now (a trial that does not cannot
        later: others only add to those ahead of it). An infeasible trial can never be the model: no file. In a
        multi-objective study every feasible trial may end on the Pareto front: each keeps its file."""
        from optuna.trial import TrialState

        if not math.isfinite(value) or (judged is not None and not judged.feasible):
            return
        if self.multi:
            save_weights(self.ctx.run_dir, trial.number, state())
            return
        done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = [t.value for t in done if t.value is not None and math.isfinite(t.value)
                  and t.user_attrs.get("feasible") is not False]
        maximize = self.ctx.plan.objective.direction == "maximize"
        ahead = sum(1 for v in values if (v > value if maximize else v < value))
        if ahead < self.ctx.candidates:
            save_weights(self.ctx.run_dir, trial.number, state())

    @property
    def multi(self) -> bool:
        r = self.ctx.plan.requirements
        return r is not None and r.multi

    def _judge(self, s: Sampled, y: Any, p: Any, rows: Any) -> Optional["Judgement"]:
        """The trial's constraints and objectives, measured on its validation (or out-of-fold) predictions."""
        from automl.search.constraints import measure_latency

        requirements = self.ctx.plan.requirements
        if requirements is None:
            return None
        ctx = self.ctx

        def latency() -> float:  # one row through a network of this configuration; k fold models cost k times
            import torch

            net = s.family.create(s.params, ctx.prepared.info).to(ctx.data.device).eval()
            one = ctx.rows["val"][:1]
            with torch.no_grad():
                ms = measure_latency(lambda: ctx.data.predict(net, one, 1))
            return round(ms * max(1, len(ctx.folds)), 4)

        side = {k: v[rows] for k, v in ctx.prepared.side.items()}
        judged = requirements.judge(y, p, side, latency if requirements.measures_latency else None)
        TrialRecord.note(s.trial, feasible=judged.feasible, measured=judged.values, threshold=judged.threshold,
                         constraint_violations=judged.violations)
        for c, violation in zip(requirements.constraints, judged.violations):  # Optuna's constrained TPE reads them
            s.trial.set_constraint(c.text, violation)
        if not judged.feasible:
            log.info("trial %d is infeasible: %s", s.trial.number, "; ".join(judged.missed))
        return judged

    def _complete(self, trial: "optuna.Trial", value: float, judged: Optional["Judgement"]) -> Outcome:
        if self.multi and judged is not None:
            return Outcome(trial, "complete", value, self.ctx.plan.requirements.objective_values(judged))
        return Outcome(trial, "complete", value)

    @staticmethod
    def _pruned(trial: "optuna.Trial", exc: Exception) -> Outcome:
        TrialRecord.note(trial, stopped=str(exc)[:300])
        return Outcome(trial, "pruned")

    def _fail(self, trial: "optuna.Trial", exc: BaseException) -> Outcome:
        if isinstance(exc, SystemExit):  # a plugin's network called sys.exit(): its trial fails, not the search
            reason = f"the model called sys.exit({exc.code!r})"
        else:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        TrialRecord.note(trial, fail_reason=reason)
        level = logging.INFO if isinstance(exc, Diverged) else logging.WARNING
        log.log(level, "trial %d failed: %s", trial.number, reason)
        if self.ctx.cfg.debug:
            log.error("trial %d traceback", trial.number, exc_info=exc)
        return Outcome(trial, "fail")


@dataclass(frozen=True)
class RoundPlan:
    """How a search process groups its trials: rounds of up to `size` once `warmup` trials of the study have
    finished (one at a time before), and only behind a leader of at most `max_weights` trainable weights (a
    larger leader trains alone; None: any)."""

    size: int
    warmup: int = 0
    max_weights: Optional[int] = None

    def size_now(self, finished: int) -> int:
        return 1 if finished < self.warmup else self.size


#: A round's places are refilled as its members stop until it has trained this many times its size in trials;
#: then its architecture gives way to the sampler's next leader.
REFILL = 2
#: search.batch=auto: the round size on a CPU and on a GPU (idle on one small network).
CPU_ROUND, GPU_ROUND = 8, 32
#: search.batch=auto: trials that finish one at a time before rounds begin. A round multiplies its leader's
#: architecture by its size, and TPE's first leaders are random draws (its 5 start-up trials): a random 4 x 496
#: leader cost 8 such trials. After these, TPE's leaders come from what the study has learned. Measured on ISLR
#: Default (60 trials of mlp, 2 workers, seeds 0-5, trials per minute): no warm-up 125-286, 10 trials 201-407,
#: 16 trials 207-497, 24 trials 124-334; one trial at a time 79-325.
WARMUP = 16
#: search.batch=auto on a CPU: the largest leader (trainable weights per member) whose round is stacked. A CPU
#: step of a larger network is arithmetic, which stacking does not reduce: measured on ISLR Default, 256-row
#: batches, 8 members against one, per member-epoch: 4.9x faster for a linear model, 3.3x at 1 x 64, 1.9x at
#: 1 x 200, 1.4-1.6x at 2 x 200, 1.24x at 3 x 256 (about 140k weights).
CPU_MAX_WEIGHTS = 65_536


def round_plan(batch: str, device: Any, n_trials: Optional[int], n_workers: int) -> RoundPlan:
    """How a search process asks for trials: `search.batch=N`, rounds of N from the first trial; "auto", rounds of
    `GPU_ROUND` on a GPU and of `CPU_ROUND` on a CPU behind leaders of at most `CPU_MAX_WEIGHTS` weights, both
    after `WARMUP` trials one at a time. A round is never more than this process's share of the trials.

    Measured (`benchmarks/speed.py`, BENCHMARKS.md, 60 trials of mlp on ISLR Default, 2 CPU cores): rounds of 8
    from the first trial ran 0.63-0.93x the trials per minute of one trial at a time, because one random wide
    leader committed 8 trials to an architecture whose steps are arithmetic; with the warm-up, the weight limit
    and refills, auto ran 1.17x (median of seeds 0-2: 1.14x, 1.24x, 1.05x; earlier single-seed runs 1.2-1.9x:
    the sampler's path decides how wide the networks are)."""
    gpu = getattr(device, "type", "cpu") == "cuda"
    if batch == "auto":
        plan = RoundPlan(GPU_ROUND, WARMUP) if gpu else RoundPlan(CPU_ROUND, WARMUP, CPU_MAX_WEIGHTS)
    else:
        plan = RoundPlan(int(batch))
    size = plan.size
    if n_trials is not None:
        size = min(size, max(1, math.ceil(n_trials / max(1, n_workers))))
    return RoundPlan(max(1, size), plan.warmup, plan.max_weights)
