"""Pruning that compares a trial only with trials of its own model family, at the same epoch.

Families learn at different speeds (a transformer starts slower than a factorisation model); judged against
every trial's curve at the same epoch, a slow starter would be pruned before it got going.

Optuna's median rule compares a trial with finished trials only. The trials of a stacked round
(`search.batch`) reach each epoch together, and none has finished while the first rounds train: under that rule
the first 8-16 trials of a batched search could not be pruned at all. So the median here also counts the
trials of the family running beside it that have reached the same epoch (its round's other members, another
worker's trial); pruned trials stay out, as in Optuna. Synchronous comparison within a round is successive
halving's (Jamieson & Talwalkar, AISTATS 2016) view of a batch.
"""

from __future__ import annotations

from typing import Any

import optuna


class FamilyPruner(optuna.pruners.BasePruner):
    """Wraps a pruner (median, successive halving) so it judges a trial against its own family alone; a median
    (percentile) pruner also against the family's running trials at the trial's epoch."""

    def __init__(self, base: optuna.pruners.BasePruner) -> None:
        self.base = base
        self.peers = isinstance(base, optuna.pruners.PercentilePruner)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        family = trial.params.get("family")
        if family is None and not self.peers:
            return self.base.prune(study, trial)
        return self.base.prune(_FamilyView(study, family, trial if self.peers else None), trial)


class _FamilyView:
    """The study as the wrapped pruner sees it: only the trials of one family (None: every trial); with `judged`,
    "complete" trials include the running ones that have reached `judged`'s latest epoch (not `judged` itself)."""

    def __init__(self, study: optuna.Study, family: Any, judged: Any = None) -> None:
        self._study, self._family, self._judged = study, family, judged

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        from optuna.trial import TrialState

        judged = self._judged
        peers = judged is not None and states is not None and tuple(states) == (TrialState.COMPLETE,)
        if peers:
            states = (TrialState.COMPLETE, TrialState.RUNNING)
        trials = [t for t in self._study.get_trials(deepcopy=deepcopy, states=states)
                  if self._family is None or t.params.get("family") == self._family]
        if peers:
            step = judged.last_step
            trials = [t for t in trials if t.state == TrialState.COMPLETE or
                      (t.number != judged.number and step in t.intermediate_values)]
        return trials

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)
