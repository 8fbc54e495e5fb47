"""The two ranking metrics credit risk reports besides ROC AUC: Gini and the Kolmogorov-Smirnov statistic.

Both come from scikit-learn's ROC computations, imported when a metric is first computed. ROC AUC, PR AUC,
Brier score and log loss are the host's metrics, reused by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.api import BINARY, MAXIMIZE, MetricSpec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def gini(y: "np.ndarray", p: "np.ndarray") -> float:
    """Accuracy ratio (Somers' D): 2 * ROC AUC - 1, from 0 (random) to 1 (perfect ranking)."""
    from sklearn.metrics import roc_auc_score

    return 2.0 * roc_auc_score(y, p) - 1.0


def ks(y: "np.ndarray", p: "np.ndarray") -> float:
    """Largest gap between the score distributions of bads and goods: max over thresholds of TPR - FPR."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return float((tpr - fpr).max())


METRICS = [
    MetricSpec("gini", MAXIMIZE, {BINARY}, gini, "Gini coefficient (accuracy ratio): 2 * ROC AUC - 1"),
    MetricSpec("ks", MAXIMIZE, {BINARY}, ks, "Kolmogorov-Smirnov statistic: max gap between the score CDFs of "
                                            "bads and goods"),
]
