"""KS and ROC curves as PNG files (matplotlib's Agg canvas: no display, no global pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from matplotlib.figure import Figure


def _figure() -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def ks_curve(y: "np.ndarray", p: "np.ndarray", path: Path, title: str = "") -> float:
    """Cumulative shares of bads and goods against the share of applicants declined (riskiest first)."""
    import numpy as np

    y = np.asarray(y).astype(int)
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    bads = np.r_[0, np.cumsum(y[order])] / max(y.sum(), 1)
    goods = np.r_[0, np.cumsum(1 - y[order])] / max(len(y) - y.sum(), 1)
    share = np.arange(len(y) + 1) / len(y)
    at = int(np.argmax(bads - goods))
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(share, bads, label="bads (cumulative share)", color="tab:red")
    ax.plot(share, goods, label="goods (cumulative share)", color="tab:blue")
    ax.vlines(share[at], goods[at], bads[at], colors="black", linestyles="--",
              label=f"KS = {bads[at] - goods[at]:.3f} at {share[at]:.0%} declined")
    ax.set(xlabel="share of applicants, riskiest first", ylabel="cumulative share", xlim=(0, 1), ylim=(0, 1.02),
           title=title or "KS curve (test rows)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return float(bads[at] - goods[at])


def roc_curve(y: "np.ndarray", p: "np.ndarray", path: Path, threshold: float | None = None, title: str = "") -> float:
    """ROC curve with its AUC and Gini in the legend, and the cut-off's operating point when given."""
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    fpr, tpr, _ = sk_roc_curve(y, p)
    auc = float(roc_auc_score(y, p))
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color="tab:red", label=f"model: AUC {auc:.3f}, Gini {2 * auc - 1:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    if threshold is not None:
        import numpy as np

        y, declined = np.asarray(y).astype(bool), np.asarray(p) >= threshold
        at = (declined[~y].mean(), declined[y].mean())
        ax.plot(*at, "o", color="black", label=f"cut-off {threshold:.3f}: {1 - declined.mean():.0%} approved")
    ax.set(xlabel="false positive rate (goods declined)", ylabel="true positive rate (bads declined)",
           xlim=(0, 1), ylim=(0, 1.02), title=title or "ROC curve (test rows)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return auc
