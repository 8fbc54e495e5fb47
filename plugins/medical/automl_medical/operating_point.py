"""The decision threshold, chosen on validation predictions (never on test) by a clinical rule.

A required rate holds by the lower bound of its 95% interval, not its point estimate
(`automl.api.choose_threshold`): a sensitivity aimed at 0.90 on validation lands anywhere from 0.875 to 0.917 on
test; aimed by its bound, it keeps the margin the number of positive rows calls for. The threshold is placed
midway between the score that reaches the point and the next lower score, so that small shifts of the scores
on new patients do not flip the rows at the edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from automl.api import DataError, RateRequirement, choose_threshold
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
    #: The lower 95% bound of the targeted rate there (None for rules without a target).
    validation_lower_bound: float | None = None

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
    if rule == "fixed":
        t = float(threshold)
        pred = p >= t
        return OperatingPoint(t, rule, RULES[rule], None, float(pred[y == 1].mean()), float((~pred)[y == 0].mean()),
                              len(y))
    if rule in ("min_sensitivity", "min_specificity"):
        rate, other = ("sensitivity", "specificity") if rule == "min_sensitivity" else ("specificity", "sensitivity")
        t, _, r, i = choose_threshold(y, p, [RateRequirement(rate, ">=", target)], prefer=other)
        return OperatingPoint(t, rule, RULES[rule], float(target), float(r.point["sensitivity"][i]),
                              float(r.point["specificity"][i]), len(y), float(r.lower[rate][i]))
    if rule != "youden":
        raise ValueError(f"unknown operating-point rule {rule!r}")
    fpr, tpr, cut = roc_curve(y, p, drop_intermediate=False)
    i = int(np.argmax(tpr - fpr))
    if i == 0:  # the "no one is positive" corner: just above the highest score
        t = float(np.nextafter(cut[1], np.inf))
    elif i == len(cut) - 1:  # everyone positive: the lowest score itself
        t = float(cut[i])
    else:
        t = float((cut[i] + cut[i + 1]) / 2)
    return OperatingPoint(t, rule, RULES[rule], None, float(tpr[i]), float(1 - fpr[i]), len(y))
