"""The accept / decline decision: a cut-off on P(bad) chosen on validation rows for a business target.

An applicant is declined when P(bad) >= threshold and approved otherwise, which is what the host predictor's
`predict` does with the stored threshold (it returns the positive class, "bad", for declines). The target is
either an approval rate (approve that share, lowest risk first) or a maximum bad rate among the approved
(approve as many as possible while it holds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl_finance_risk.options import FinanceRiskOptions

log = logging.getLogger(__name__)

APPROVAL_RATE, MAX_BAD_RATE = "approval_rate", "max_bad_rate"


@dataclass(frozen=True)
class Cutoff:
    threshold: float
    target: str  # approval_rate | max_bad_rate
    target_value: float
    #: False when no cut-off meets a bad-rate cap on validation (then nobody is approved).
    target_met: bool = True


def choose_cutoff(y: "np.ndarray", p: "np.ndarray", options: "FinanceRiskOptions") -> Cutoff:
    """The cut-off for the configured target, found on (labels, calibrated P(bad)) of the validation rows."""
    import numpy as np

    order = np.argsort(p, kind="stable")
    s, bad = np.asarray(p, dtype=float)[order], np.asarray(y)[order]
    approval = options.approval_rate
    if approval is not None:
        return Cutoff(_cut(s, int(round(approval * len(s)))), APPROVAL_RATE, approval)
    cap = options.max_bad_rate
    approved = np.arange(1, len(s) + 1)
    bad_rate = np.cumsum(bad) / approved
    # A cut-off can only fall between two distinct scores, so only those prefixes are attainable.
    attainable = np.r_[s[1:] > s[:-1], True]
    ok = np.flatnonzero(attainable & (bad_rate <= cap))
    if len(ok) == 0:
        log.warning("no cut-off keeps the bad rate among approved at or below %.4f on validation: nobody is "
                    "approved; raise domain.options.max_bad_rate or use target_approval_rate", cap)
        return Cutoff(_cut(s, 0), MAX_BAD_RATE, cap, target_met=False)
    return Cutoff(_cut(s, int(ok[-1]) + 1), MAX_BAD_RATE, cap)


def _cut(sorted_scores: "np.ndarray", k: int) -> float:
    """A threshold approving the k lowest scores: halfway between the k-th and the next distinct score."""
    import numpy as np

    s = sorted_scores
    if k <= 0:
        return float(s[0])  # everyone has P(bad) >= the lowest score: nobody is approved
    if k >= len(s):
        return float(np.nextafter(s[-1], np.inf))
    return float((s[k - 1] + s[k]) / 2.0)


def decision_report(y: "np.ndarray", p: "np.ndarray", threshold: float) -> dict[str, Any]:
    """Approval and bad rates and the confusion matrix (positive class: bad, predicted bad: declined)."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    y = np.asarray(y).astype(int)
    declined = (np.asarray(p) >= threshold).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(y, declined, labels=[0, 1])
    n, approved = len(y), int(tn + fn)

    def rate(num: int, den: int) -> float:
        return float(num / den) if den else float("nan")

    return {
        "n": int(n),
        "approval_rate": rate(approved, n),
        "bad_rate_approved": rate(int(fn), approved),
        "bad_rate_declined": rate(int(tp), n - approved),
        "bads_declined_share": rate(int(tp), int(tp + fn)),  # recall of bads
        "goods_declined_share": rate(int(fp), int(fp + tn)),  # creditworthy applicants turned away
        "confusion_matrix": {
            "actual_bad": {"declined": int(tp), "approved": int(fn)},
            "actual_good": {"declined": int(fp), "approved": int(tn)},
        },
    }
