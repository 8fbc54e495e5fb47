"""The gains table: the scored population cut into equal bands by score, riskiest band first.

Per band: how many applicants, how many bads, the bad rate, the cumulative share of all bads and of all
goods captured so far, and their gap (KS). The largest gap is the decile version of the KS statistic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

COLUMNS = ["decile", "count", "min_score", "max_score", "bads", "goods", "bad_rate", "cum_bad_share",
           "cum_good_share", "ks"]


def gains_table(y: "np.ndarray", p: "np.ndarray", bands: int = 10) -> "pd.DataFrame":
    """Rows sorted by P(bad), highest first, split into `bands` bands of equal size (sizes differ by at most 1)."""
    import numpy as np
    import pandas as pd

    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    if len(y) < bands:
        raise ValueError(f"a gains table of {bands} bands needs at least {bands} rows, got {len(y)}")
    order = np.argsort(-p, kind="stable")
    total_bads, total_goods = max(int(y.sum()), 1), max(int(len(y) - y.sum()), 1)
    rows, cum_bads, cum_goods = [], 0, 0
    for i, idx in enumerate(np.array_split(order, bands), start=1):
        bads = int(y[idx].sum())
        goods = len(idx) - bads
        cum_bads, cum_goods = cum_bads + bads, cum_goods + goods
        rows.append({
            "decile": i, "count": len(idx), "min_score": float(p[idx].min()), "max_score": float(p[idx].max()),
            "bads": bads, "goods": goods, "bad_rate": bads / len(idx),
            "cum_bad_share": cum_bads / total_bads, "cum_good_share": cum_goods / total_goods,
            "ks": cum_bads / total_bads - cum_goods / total_goods,
        })
    return pd.DataFrame(rows, columns=COLUMNS)
