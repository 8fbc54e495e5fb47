"""Pruning that compares a trial only with trials of its own model family."""

from __future__ import annotations

from typing import Any

import optuna


class FamilyPruner(optuna.pruners.BasePruner):
    """Wraps a pruner (median, successive halving) so it judges a trial against its own family alone.

    Families learn at different speeds (a transformer starts slower than a factorisation model); judged
    against every trial's curve at the same epoch, a slow starter would be pruned before it got going.
    """

    def __init__(self, base: optuna.pruners.BasePruner) -> None:
        self.base = base

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        family = trial.params.get("family")
        return self.base.prune(study if family is None else _FamilyView(study, family), trial)


class _FamilyView:
    """The study as the wrapped pruner sees it: only the trials of one family."""

    def __init__(self, study: optuna.Study, family: str) -> None:
        self._study, self._family = study, family

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states)
                if t.params.get("family") == self._family]

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)
