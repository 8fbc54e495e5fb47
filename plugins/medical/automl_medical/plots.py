"""The two pictures a clinical paper shows: the ROC curve with the operating point, and the calibration
curve (reliability diagram). matplotlib with the Agg backend: no display needed; PNG files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

ROC_PNG, CALIBRATION_PNG = "roc_curve.png", "calibration_curve.png"


def _pyplot():  # noqa: ANN202 - the pyplot module
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_roc(path: Path, curves: Sequence[tuple[str, "np.ndarray", "np.ndarray"]],
             point: tuple[float, float] | None = None, title: str = "ROC curve") -> None:
    """`curves`: (label, y, score) per curve; `point`: (1 - specificity, sensitivity) of the operating point."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for label, y, p in curves:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, p):.3f})")
    if point is not None:
        ax.plot([point[0]], [point[1]], "o", color="black", label="operating point (test)")
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_calibration(path: Path, y: "np.ndarray", p: "np.ndarray", bins: int, ece: float,
                     title: str = "Calibration (test)") -> None:
    """Observed rate against mean predicted probability per equal-width bin, with the score histogram.

    Each point is labelled with its number of rows: on small data a bin of two patients is not evidence.
    """
    import numpy as np
    from sklearn.calibration import calibration_curve

    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), dpi=100, height_ratios=(3, 1), sharex=True)
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)  # the bins calibration_curve uses
    counts = counts[counts > 0]
    top.plot([0, 1], [0, 1], ":", color="grey", linewidth=1, label="perfect calibration")
    top.plot(predicted, observed, "-", linewidth=1, color="C0")
    sizes = 15 + 120 * counts / counts.max() if len(counts) == len(predicted) else 40
    top.scatter(predicted, observed, s=sizes, color="C0", zorder=3, label=f"model (ECE {ece:.3f})")
    if len(counts) == len(predicted):
        for x, obs, n in zip(predicted, observed, counts):
            top.annotate(str(n), (x, obs), textcoords="offset points", xytext=(5, -10), fontsize=7)
    top.set(ylabel="observed rate", ylim=(-0.02, 1.02), title=title)
    top.legend(loc="upper left", fontsize=8)
    bottom.hist(p, bins=bins, range=(0, 1), color="grey")
    bottom.set(xlabel="predicted probability", ylabel="rows", xlim=(0, 1))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
