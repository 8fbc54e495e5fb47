"""The standard metrics for tabular tasks, computed by scikit-learn.

scikit-learn rather than torchmetrics here: importing torchmetrics also imports transformers and
scipy.signal (about 3.5 s on the reference machine), which every worker would pay before its first trial.
Metrics run once per epoch on the validation rows, on numpy arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.specs import MetricSpec
from automl.tasks import BINARY, CLASSIFICATION, MAXIMIZE, MINIMIZE, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def compute_metrics(specs: "list[MetricSpec]", y: "np.ndarray", p: "np.ndarray") -> dict[str, float]:
    """Every metric on one set of predictions; a metric undefined on them (one class present, no rows) gives NaN."""
    if len(y) == 0:
        return {m.name: float("nan") for m in specs}
    out = {}
    for m in specs:
        try:
            out[m.name] = float(m.fn(y, p))
        except ValueError:
            out[m.name] = float("nan")
    return out


def _labels(p: "np.ndarray") -> "np.ndarray":
    """Predicted labels: argmax of a probability matrix, or P(positive) >= 0.5."""
    return p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)


def roc_auc(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import roc_auc_score

    if p.ndim == 2:
        return roc_auc_score(y, p, multi_class="ovr", labels=list(range(p.shape[1])))
    return roc_auc_score(y, p)


def pr_auc(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import average_precision_score

    return average_precision_score(y, p)


def log_loss(y: "np.ndarray", p: "np.ndarray") -> float:
    """Mean negative log-likelihood, probabilities clipped as scikit-learn clips them (to float64's eps). In numpy:
    the early-stopping judge and ensemble selection call it hundreds of times a run, and sklearn's input
    validation costs ~5 ms a call (tests/test_search.py checks it against sklearn's)."""
    import numpy as np

    y = np.asarray(y).astype(np.int64).ravel()
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    # float32 softmax rows sum to 1 only within float32 precision
    p = p / p.sum(axis=1, keepdims=True)
    eps = np.finfo(np.float64).eps
    return float(-np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0)).mean())


def brier(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import brier_score_loss

    return brier_score_loss(y, p)


def accuracy(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import accuracy_score

    return accuracy_score(y, _labels(p))


def f1(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import f1_score

    return f1_score(y, _labels(p), zero_division=0)


def macro_f1(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import f1_score

    return f1_score(y, _labels(p), average="macro", zero_division=0)


def rmse(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import root_mean_squared_error

    return root_mean_squared_error(y, p)


def mae(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import mean_absolute_error

    return mean_absolute_error(y, p)


def r2(y: "np.ndarray", p: "np.ndarray") -> float:
    from sklearn.metrics import r2_score

    return r2_score(y, p)


STANDARD_METRICS = [
    MetricSpec("roc_auc", MAXIMIZE, CLASSIFICATION, roc_auc, "area under the ROC curve (multiclass: one-vs-rest)"),
    MetricSpec("pr_auc", MAXIMIZE, {BINARY}, pr_auc, "average precision (area under the precision-recall curve)"),
    MetricSpec("log_loss", MINIMIZE, CLASSIFICATION, log_loss, "cross-entropy of the predicted probabilities"),
    MetricSpec("brier", MINIMIZE, {BINARY}, brier, "mean squared error of the probabilities"),
    MetricSpec("accuracy", MAXIMIZE, CLASSIFICATION, accuracy, "share of correct labels (threshold 0.5 / argmax)"),
    MetricSpec("f1", MAXIMIZE, {BINARY}, f1, "F1 of the positive class at threshold 0.5"),
    MetricSpec("macro_f1", MAXIMIZE, {MULTICLASS}, macro_f1, "F1 averaged over classes"),
    MetricSpec("rmse", MINIMIZE, {REGRESSION}, rmse, "root mean squared error, in target units"),
    MetricSpec("mae", MINIMIZE, {REGRESSION}, mae, "mean absolute error, in target units"),
    MetricSpec("r2", MAXIMIZE, {REGRESSION}, r2, "coefficient of determination"),
]
