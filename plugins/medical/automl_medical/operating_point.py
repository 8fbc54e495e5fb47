"""The decision threshold, chosen on validation predictions (never on test) by a clinical rule.

Candidates are the points of scikit-learn's ROC curve. The chosen point fixes the validation confusion
matrix; the threshold is placed midway between the score that reaches it and the next lower score, so that
small shifts of the scores on new patients do not flip the rows at the edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from automl.api import DataError
from automl_medical.options import RULES

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    rule: str
    description: str
    target: float | None
    #: Sensitivity and specificity on the validation rows the threshold was chosen on.
    validation_sensitivity: float
    validation_specificity: float
    n_validation: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_operating_point(y: "np.ndarray", p: "np.ndarray", rule: str, target: float = 0.9,
                           threshold: float = 0.5) -> OperatingPoint:
    """Pick the threshold on (labels, P(positive)) of the validation rows by `rule` (see `options.RULES`)."""
    import numpy as np
    from sklearn.metrics import roc_curve

    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    if len(np.unique(y)) < 2:
        raise DataError("the validation rows hold a single class, so no operating point can be chosen: use more "
                        "data or a larger data.val_size")
    fpr, tpr, cut = roc_curve(y, p, drop_intermediate=False)
    spec = 1.0 - fpr
    if rule == "fixed":
        t = float(threshold)
        pred = p >= t
        return OperatingPoint(t, rule, RULES[rule], None, float(pred[y == 1].mean()), float((~pred)[y == 0].mean()),
                              len(y))
    if rule == "min_sensitivity":
        feasible = tpr >= target - 1e-12  # the last point (everyone positive) always qualifies
        score = np.where(feasible, spec + 1e-9 * tpr, -np.inf)  # ties: the more sensitive point
    elif rule == "min_specificity":
        feasible = spec >= target - 1e-12  # the first point (no one positive) always qualifies
        score = np.where(feasible, tpr + 1e-9 * spec, -np.inf)
    elif rule == "youden":
        score = tpr - fpr
    else:
        raise ValueError(f"unknown operating-point rule {rule!r}")
    i = int(np.argmax(score))
    if i == 0:  # the "no one is positive" corner: just above the highest score
        t = float(np.nextafter(cut[1], np.inf))
    elif i == len(cut) - 1:  # everyone positive: the lowest score itself
        t = float(cut[i])
    else:
        t = float((cut[i] + cut[i + 1]) / 2)
    return OperatingPoint(t, rule, RULES[rule], None if rule == "youden" else float(target), float(tpr[i]),
                          float(spec[i]), len(y))
