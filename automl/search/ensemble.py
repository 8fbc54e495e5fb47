"""Ensemble selection: a weighted ensemble of the best trials, chosen greedily on their held-out predictions.

Caruana, Niculescu-Mizil, Crew & Ksikes, "Ensemble Selection from Libraries of Models" (ICML 2004), as
AutoGluon's weighted ensemble does it: start from nothing and, for `rounds` rounds, add (with replacement)
the candidate whose addition gives the best objective for the average of the chosen predictions; a model's
weight is the share of rounds that chose it. The ensemble kept is the one of the best round (later rounds
can only fit the held-out rows more closely), and selection never picks a worse ensemble than the best single
trial, which round one chooses. Predictions are validation-split predictions of each trial, or its
out-of-fold predictions in a cross-validated study (five times the rows, and none of them seen by the model
that predicted it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass
class Selection:
    """The chosen ensemble: candidate index -> weight (summing to 1), its score, and the rounds run."""

    weights: dict[int, float]
    score: float
    rounds: int
    #: Score of the ensemble after each round (round 1: the best single candidate).
    history: list[float]


def select(predictions: list["np.ndarray"], y: "np.ndarray", score: Callable[["np.ndarray", "np.ndarray"], float],
           maximize: bool, rounds: int) -> Selection:
    """Greedy forward selection with replacement over candidates' predictions of the same rows."""
    import numpy as np

    if not predictions:
        raise ValueError("ensemble selection needs at least one candidate")
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])
    better = (lambda a, b: a > b) if maximize else (lambda a, b: a < b)
    counts = np.zeros(len(predictions), dtype=int)
    total = np.zeros_like(stacked[0])
    history: list[float] = []
    best_counts, best_score = None, -math.inf if maximize else math.inf
    for r in range(1, max(1, rounds) + 1):
        scores = [_safe(score, y, (total + p) / r) for p in stacked]
        choice = _best(scores, maximize)
        counts[choice] += 1
        total += stacked[choice]
        history.append(scores[choice])
        if better(scores[choice], best_score):
            best_score, best_counts = scores[choice], counts.copy()
    assert best_counts is not None
    used = int(best_counts.sum())
    weights = {int(i): float(c / used) for i, c in enumerate(best_counts) if c}
    return Selection(weights, float(best_score), used, history)


def _safe(score: Callable, y: "np.ndarray", p: "np.ndarray") -> float:
    try:
        value = float(score(y, p))
    except ValueError:
        return math.nan
    return value


def _best(scores: list[float], maximize: bool) -> int:
    """The best finite score's index (the first on ties: candidates come best trial first)."""
    finite = [(s if maximize else -s, -i) for i, s in enumerate(scores) if math.isfinite(s)]
    if not finite:
        return 0
    return -max(finite)[1]
