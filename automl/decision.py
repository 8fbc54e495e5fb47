"""Binary decisions judged honestly: rates at a threshold with their 95% bounds, and thresholds chosen so that
a required rate holds by its bound, not by its point estimate.

At a fixed threshold, a stratified bootstrap of a rate (sensitivity among the positives, specificity among
the negatives...) resamples k successes out of n rows, so its replicates are Binomial(n, k/n) / n exactly: the
percentile bound of that bootstrap is the binomial quantile. It is computed as such (no resampling noise, and
fast enough to scan every candidate threshold).

A required rate, e.g. sensitivity >= 0.95, holds at a threshold when the lower bound of its 95% interval
reaches 0.95; a rate that must stay below a bound is judged by its upper bound. Aiming the point estimate at
the target lands below it on new rows about half the time (a sensitivity aimed at 0.90 on validation lands
anywhere from 0.875 to 0.917 on test); aiming the bound at it leaves the margin the sample size calls for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: The rates a threshold decides (aliases included), as (successes, rows) from the confusion counts.
RATES = {
    "sensitivity": ("tp", "tp+fn"), "recall": ("tp", "tp+fn"), "tpr": ("tp", "tp+fn"),
    "specificity": ("tn", "tn+fp"), "tnr": ("tn", "tn+fp"),
    "fpr": ("fp", "tn+fp"), "fnr": ("fn", "tp+fn"),
    "ppv": ("tp", "tp+fp"), "precision": ("tp", "tp+fp"), "npv": ("tn", "tn+fn"),
    "selection_rate": ("tp+fp", "tp+fp+tn+fn"),
}
ALPHA = 0.05


def binomial_bounds(k: "np.ndarray", n: "np.ndarray", alpha: float = ALPHA) -> tuple["np.ndarray", "np.ndarray"]:
    """The (lower, upper) percentile bounds of a stratified bootstrap of the rate k / n: binomial quantiles
    (NaN where n is 0)."""
    import numpy as np
    from scipy.stats import binom

    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    rate = np.divide(k, n, out=np.full_like(k, np.nan), where=n > 0)
    safe_n, safe_rate = np.maximum(n, 1), np.nan_to_num(rate)
    lo = binom.ppf(alpha / 2, safe_n, safe_rate) / safe_n
    hi = binom.ppf(1 - alpha / 2, safe_n, safe_rate) / safe_n
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


@dataclass
class Rates:
    """Every rate at every candidate threshold (arrays aligned with `thresholds`): point, lower and upper bound."""

    thresholds: "np.ndarray"
    point: dict[str, "np.ndarray"]
    lower: dict[str, "np.ndarray"]
    upper: dict[str, "np.ndarray"]


def rates(y: "np.ndarray", p: "np.ndarray", thresholds: Optional["np.ndarray"] = None) -> Rates:
    """Rates of the decision `p >= t` at each candidate t (default: every distinct score, plus one above them
    all, so that "no one positive" is a candidate too)."""
    import numpy as np

    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    if thresholds is None:
        scores = np.unique(p)
        thresholds = np.append(scores, np.nextafter(scores[-1], np.inf)) if len(scores) else np.array([0.5])
    pos_sorted, neg_sorted = np.sort(p[y == 1]), np.sort(p[y == 0])
    n_pos, n_neg = len(pos_sorted), len(neg_sorted)
    tp = n_pos - np.searchsorted(pos_sorted, thresholds, side="left")
    fp = n_neg - np.searchsorted(neg_sorted, thresholds, side="left")
    counts = {"tp": tp, "fp": fp, "fn": n_pos - tp, "tn": n_neg - fp}

    def total(expr: str) -> "np.ndarray":
        return sum(counts[part] for part in expr.split("+"))

    point, lower, upper = {}, {}, {}
    for name, (successes, rows) in RATES.items():
        k, n = total(successes), total(rows)
        point[name] = np.divide(k, n, out=np.full(len(thresholds), np.nan), where=n > 0)
        lower[name], upper[name] = binomial_bounds(k, n)
    return Rates(np.asarray(thresholds, dtype=float), point, lower, upper)


@dataclass(frozen=True)
class RateRequirement:
    """A rate that must reach (`>=`) or stay within (`<=`) a bound, judged by its 95% bound."""

    rate: str
    op: str
    bound: float

    def slack(self, r: Rates) -> "np.ndarray":
        """How far each threshold is inside the requirement (negative: it misses by that much)."""
        import numpy as np

        if self.op in (">=", ">"):
            return np.nan_to_num(r.lower[self.rate] - self.bound, nan=-1.0)
        return np.nan_to_num(self.bound - r.upper[self.rate], nan=-1.0)


def choose_threshold(y: "np.ndarray", p: "np.ndarray", required: list[RateRequirement],
                     prefer: str = "balanced_accuracy") -> tuple[float, bool, Rates, int]:
    """The threshold where every required rate holds by its bound and `prefer` is highest (balanced accuracy,
    or a rate's point estimate, e.g. specificity for a rule-out test). Returns (threshold, whether one such
    exists, the rates, the chosen index); when none exists, the threshold that misses least."""
    import numpy as np

    r = rates(y, p)
    if prefer == "balanced_accuracy":
        score = np.nan_to_num((r.point["sensitivity"] + r.point["specificity"]) / 2, nan=0.0)
    else:
        score = np.nan_to_num(r.point[prefer], nan=0.0)
    slack = np.min([q.slack(r) for q in required], axis=0) if required else np.zeros(len(r.thresholds))
    feasible = slack >= -1e-12
    if feasible.any():
        i = int(np.argmax(np.where(feasible, score + 1e-9 * slack, -np.inf)))
        return _between(r.thresholds, p, i), True, r, i
    i = int(np.argmax(slack))
    return _between(r.thresholds, p, i), False, r, i


def _between(thresholds: "np.ndarray", p: "np.ndarray", i: int) -> float:
    """Midway between the chosen score and the next lower one, so small shifts of new scores do not flip the
    rows at the edge."""
    import numpy as np

    t = float(thresholds[i])
    below = np.asarray(p, dtype=float)[np.asarray(p, dtype=float) < t]
    return float((t + below.max()) / 2) if len(below) else t
