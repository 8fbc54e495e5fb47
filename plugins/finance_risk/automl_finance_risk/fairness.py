"""Fairness of the accept / decline decision across the groups of a sensitive attribute.

- Demographic parity difference: the largest gap in approval rate between two groups (with the adverse
  impact ratio, lowest over highest approval rate, that the "four-fifths rule" reads).
- Equal opportunity difference (Hardt, Price & Srebro 2016, for the favourable outcome): the largest gap in
  approval rate among applicants who did repay (the goods).

Groups smaller than `min_group_size` are listed with their rates but left out of the differences: a rate over
a handful of applicants is noise. A numeric attribute with many values (an age) is cut into quartile bands
whose edges come from the validation rows, so nothing about the bands is chosen on the test rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# the host's banding, so the finance report and metrics.json's `fairness` group rows alike
from automl.api import group_labels  # noqa: F401 - used by evaluate.py through this module

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

def fairness_report(y: "np.ndarray", declined: "np.ndarray", groups: "np.ndarray",
                    min_group_size: int) -> dict[str, Any]:
    """Per-group rates and the differences between groups, at one decision (declined: bool per row)."""
    import numpy as np

    y, declined, groups = np.asarray(y).astype(int), np.asarray(declined).astype(bool), np.asarray(groups)
    per_group: dict[str, dict[str, Any]] = {}
    for g in sorted(set(groups.tolist())):
        in_g = groups == g
        goods = in_g & (y == 0)
        bads = in_g & (y == 1)
        per_group[g] = {
            "n": int(in_g.sum()),
            "bad_rate": float(y[in_g].mean()),
            "approval_rate": float((~declined[in_g]).mean()),
            "approval_rate_goods": float((~declined[goods]).mean()) if goods.any() else float("nan"),
            "decline_rate_bads": float(declined[bads].mean()) if bads.any() else float("nan"),
        }
    compared = [g for g, r in per_group.items() if r["n"] >= min_group_size]
    approval = [per_group[g]["approval_rate"] for g in compared]
    opportunity = [per_group[g]["approval_rate_goods"] for g in compared
                   if np.isfinite(per_group[g]["approval_rate_goods"])]
    enough = len(compared) >= 2
    return {
        "demographic_parity_difference": float(max(approval) - min(approval)) if enough else float("nan"),
        "adverse_impact_ratio": float(min(approval) / max(approval)) if enough and max(approval) > 0
        else float("nan"),
        "equal_opportunity_difference": float(max(opportunity) - min(opportunity)) if len(opportunity) >= 2
        else float("nan"),
        "compared_groups": compared,
        "min_group_size": int(min_group_size),
        "groups": per_group,
    }
