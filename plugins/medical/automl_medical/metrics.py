"""Metrics a clinical paper reports beyond the host's: calibration error and the confusion-matrix rates at a
decision threshold. numpy arrays in, float out; a rate whose denominator is empty raises ValueError (the
host's bootstrap skips such replicates).

The confusion matrix is counted with numpy rather than `sklearn.metrics.confusion_matrix`: each metric is
recomputed on 1,000 bootstrap replicates and scikit-learn's input validation made that 50x slower; the tests
check every count and rate against scikit-learn and torchmetrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from automl.api import BINARY, MINIMIZE, MetricSpec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

DEFAULT_BINS = 10


def expected_calibration_error(y: "np.ndarray", p: "np.ndarray", bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error: |observed rate - mean predicted probability| over equal-width bins of the
    predicted probability, weighted by the share of rows in each bin (Naeini et al. 2015)."""
    import numpy as np

    y, p = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    if len(y) == 0:
        raise ValueError("expected calibration error of no rows")
    which = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=y, minlength=bins) - np.bincount(which, weights=p, minlength=bins))
    return float(gap.sum() / counts.sum())


def confusion(y: "np.ndarray", p: "np.ndarray", threshold: float) -> tuple[int, int, int, int]:
    """(tn, fp, fn, tp) of the decision `p >= threshold`, for labels y in {0, 1}."""
    import numpy as np

    positive, called = np.asarray(y) == 1, np.asarray(p) >= threshold
    tp = int(np.count_nonzero(called & positive))
    fp = int(np.count_nonzero(called)) - tp
    fn = int(np.count_nonzero(positive)) - tp
    return len(positive) - tp - fp - fn, fp, fn, tp


def _rate(num: int, den: int, what: str) -> float:
    if den == 0:
        raise ValueError(f"{what} is undefined: no rows in its denominator")
    return num / den


def sensitivity(y: "np.ndarray", p: "np.ndarray", threshold: float) -> float:
    tn, fp, fn, tp = confusion(y, p, threshold)
    return _rate(tp, tp + fn, "sensitivity")


def specificity(y: "np.ndarray", p: "np.ndarray", threshold: float) -> float:
    tn, fp, fn, tp = confusion(y, p, threshold)
    return _rate(tn, tn + fp, "specificity")


def ppv(y: "np.ndarray", p: "np.ndarray", threshold: float) -> float:
    tn, fp, fn, tp = confusion(y, p, threshold)
    return _rate(tp, tp + fp, "positive predictive value (no positive predictions)")


def npv(y: "np.ndarray", p: "np.ndarray", threshold: float) -> float:
    tn, fp, fn, tp = confusion(y, p, threshold)
    return _rate(tn, tn + fn, "negative predictive value (no negative predictions)")


def balanced_accuracy(y: "np.ndarray", p: "np.ndarray", threshold: float) -> float:
    """Mean of sensitivity and specificity (scikit-learn's `balanced_accuracy_score` for two classes)."""
    tn, fp, fn, tp = confusion(y, p, threshold)
    return (_rate(tp, tp + fn, "sensitivity") + _rate(tn, tn + fp, "specificity")) / 2


#: Threshold-dependent metrics reported at the operating point, in the order metrics.json lists them.
AT_THRESHOLD: dict[str, Callable[..., float]] = {
    "sensitivity": sensitivity,
    "specificity": specificity,
    "ppv": ppv,
    "npv": npv,
    "balanced_accuracy": balanced_accuracy,
}

ECE = MetricSpec(
    "ece", MINIMIZE, {BINARY}, expected_calibration_error,
    f"expected calibration error ({DEFAULT_BINS} equal-width bins of the predicted probability)",
)
