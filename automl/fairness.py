"""Group fairness of a binary decision, for any domain with a sensitive attribute (`data.sensitive=COL`).

At the decision threshold the predictor applies, per group of the attribute: rows, base rate, selection rate
(predicted positive), true and false positive rates, and calibration (mean predicted probability against the
observed rate). Between groups (those with at least `MIN_GROUP` rows; smaller ones are listed, not compared):

- demographic parity difference: the largest gap in selection rate;
- equal opportunity difference (Hardt, Price & Srebro, NeurIPS 2016): the largest gap in true positive rate;
- equalised odds difference: the larger of the largest gaps in true and false positive rate;

each with a 95% bootstrap interval (rows resampled within each group, seeded), so a gap on a few hundred rows
is read with its uncertainty. A many-valued numeric attribute (an age) is cut into quartile bands whose edges
come from the validation rows, never from the rows measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: Groups with fewer rows are listed with their rates but left out of the differences: a rate over a
#: handful of rows is noise.
MIN_GROUP = 30
#: A numeric attribute with more distinct values than this is banded into quartiles.
MAX_NUMERIC_GROUPS = 10
MISSING = "missing"
DIFFERENCES = ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference")


def group_labels(values: "np.ndarray", reference: "np.ndarray") -> "np.ndarray":
    """One text label per row: the value itself, or a quartile band (edges from `reference`) for a many-valued
    numeric attribute."""
    import numpy as np
    import pandas as pd

    s, ref = pd.Series(values), pd.Series(reference)
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    if numeric and s.nunique(dropna=True) > MAX_NUMERIC_GROUPS:
        base = ref.dropna() if ref.notna().any() else s.dropna()
        edges = np.unique(np.quantile(base.to_numpy(dtype=float), [0.25, 0.5, 0.75]))
        bounds = [-np.inf, *edges, np.inf]
        names = [_band(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        bands = pd.cut(s, bounds, right=False, labels=names)
        return bands.astype(object).where(s.notna(), MISSING).astype(str).to_numpy()
    return s.astype(object).where(s.notna(), MISSING).astype(str).to_numpy()


def _band(lo: float, hi: float) -> str:
    if lo == float("-inf"):
        return f"< {hi:g}"
    if hi == float("inf"):
        return f">= {lo:g}"
    return f"[{lo:g}, {hi:g})"


def _rates(y: "np.ndarray", p: "np.ndarray", decided: "np.ndarray") -> dict[str, float]:
    import numpy as np

    pos, neg = y == 1, y == 0
    return {
        "n": int(len(y)),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "selection_rate": float(decided.mean()) if len(y) else float("nan"),
        "tpr": float(decided[pos].mean()) if pos.any() else float("nan"),
        "fpr": float(decided[neg].mean()) if neg.any() else float("nan"),
        "mean_probability": float(np.mean(p)) if len(y) else float("nan"),
    }


def differences(y: "np.ndarray", decided: "np.ndarray", groups: "np.ndarray",
                compared: list[str]) -> dict[str, float]:
    """The three differences between the `compared` groups (NaN when fewer than two have the rows for it)."""
    import numpy as np

    def gap(values: list[float]) -> float:
        values = [v for v in values if np.isfinite(v)]
        return float(max(values) - min(values)) if len(values) >= 2 else float("nan")

    sel, tpr, fpr = [], [], []
    for g in compared:
        m = groups == g
        pos, neg = m & (y == 1), m & (y == 0)
        sel.append(float(decided[m].mean()) if m.any() else float("nan"))
        tpr.append(float(decided[pos].mean()) if pos.any() else float("nan"))
        fpr.append(float(decided[neg].mean()) if neg.any() else float("nan"))
    eo, fp_gap = gap(tpr), gap(fpr)
    return {"demographic_parity_difference": gap(sel), "equal_opportunity_difference": eo,
            "equalized_odds_difference": float(np.nanmax([eo, fp_gap])) if np.isfinite([eo, fp_gap]).any()
            else float("nan")}


def group_fairness(y: "np.ndarray", p: "np.ndarray", threshold: float, groups: "np.ndarray",
                   n_boot: int = 1000, seed: int = 0, min_group: int = MIN_GROUP) -> dict[str, Any]:
    """Per-group rates and the differences between groups at `threshold`, with 95% bootstrap intervals."""
    import numpy as np

    y, p, groups = np.asarray(y).astype(int), np.asarray(p, dtype=float), np.asarray(groups).astype(str)
    decided = p >= threshold
    names = sorted(set(groups.tolist()))
    per_group = {g: _rates(y[groups == g], p[groups == g], decided[groups == g]) for g in names}
    compared = [g for g in names if per_group[g]["n"] >= min_group]
    point = differences(y, decided, groups, compared)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in compared]
    draws: dict[str, list[float]] = {k: [] for k in DIFFERENCES}
    if len(compared) >= 2:
        for _ in range(n_boot):
            idx = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members])
            for k, v in differences(y[idx], decided[idx], groups[idx], compared).items():
                if np.isfinite(v):
                    draws[k].append(v)
    ci95 = {k: [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))] for k, v in draws.items() if v}
    return {"threshold": float(threshold), "min_group": int(min_group), "compared_groups": compared, **point,
            "ci95": ci95, "groups": per_group}


def fairness_report(y_test: "np.ndarray", p_test: "np.ndarray", threshold: float,
                    side_test: dict[str, "np.ndarray"], side_val: dict[str, "np.ndarray"],
                    seed: int = 0) -> dict[str, Any]:
    """`group_fairness` for each sensitive attribute, on the test rows (bands from the validation rows)."""
    return {name: group_fairness(y_test, p_test, threshold, group_labels(values, side_val.get(name, values)),
                                 seed=seed)
            for name, values in side_test.items()}
