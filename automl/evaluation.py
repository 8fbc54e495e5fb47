"""The final evaluation of the best model: what a domain's `evaluate` hook receives and may change.

The host fills it with validation and test predictions of the final model and the standard test metrics of
the domain. A domain may then calibrate probabilities on the validation rows (`calibration`), pick a
decision threshold on them (`threshold`), add metric values (`metrics`), 95% intervals (`ci95`) and
structured results (`details`), keep notes in the predictor (`notes`), and write tables or pictures with
`path(name)`. The test rows are used here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl.specs import DomainSpec, MetricSpec


@dataclass
class Evaluation:
    run_dir: Path
    domain: "DomainSpec"
    options: Any
    task: str
    y_val: "np.ndarray"
    p_val: "np.ndarray"
    y_test: "np.ndarray"
    p_test: "np.ndarray"
    metric_specs: list["MetricSpec"]
    classes: list[Any] | None = None
    positive_class: Any = None
    #: Sensitive attributes of the validation and test rows, for fairness reports (never trained on).
    side_val: dict[str, "np.ndarray"] = field(default_factory=dict)
    side_test: dict[str, "np.ndarray"] = field(default_factory=dict)
    #: The search's constraints (`automl.search.constraints.Constraint`: `metric`, `op`, `bound`, `kind`). A
    #: domain that picks a decision threshold honours the rate constraints (e.g. sensitivity>=0.95), judged
    #: by their 95% bound (`automl.decision`).
    constraints: list[Any] = field(default_factory=list)
    #: Test metric values (floats; NaN where undefined), written to metrics.json under `test`.
    metrics: dict[str, float] = field(default_factory=dict)
    #: 95% intervals of test metrics, `name -> [low, high]` (metrics.json `ci95`).
    ci95: dict[str, list[float]] = field(default_factory=dict)
    #: The domain's structured results (a decision, fairness per group, an operating point: plain JSON).
    details: dict[str, Any] = field(default_factory=dict)
    #: Binary tasks: the decision threshold on calibrated P(positive) the saved predictor applies.
    threshold: Optional[float] = None
    #: Binary tasks: the calibration map the saved predictor applies (`automl.tabular.calibration`).
    calibration: Optional[dict[str, Any]] = None
    #: The domain's own notes saved with the predictor (plain JSON), e.g. how the threshold was chosen.
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def has_test(self) -> bool:
        """False when the run keeps no test rows (`data.test_size=0`): choose what the predictor needs on the
        validation rows, but there is nothing to measure on test."""
        return len(self.y_test) > 0

    def compute(self, y: "np.ndarray", p: "np.ndarray") -> dict[str, float]:
        """The domain's standard metrics on one set of predictions (NaN where undefined)."""
        from automl.metrics import compute_metrics

        return compute_metrics(self.metric_specs, y, p)

    def recompute(self) -> None:
        """Refresh the standard test metrics after `p_test` changed (e.g. after calibration)."""
        self.metrics.update(self.compute(self.y_test, self.p_test))

    def path(self, name: str) -> Path:
        return self.run_dir / name


def bootstrap_ci(
    fn: Any, y: "np.ndarray", p: "np.ndarray", n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
    stratified: bool = True,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of `fn(y, p)` over rows resampled with replacement.

    Resampling within each class (stratified) keeps every replicate computable for rare outcomes;
    replicates where the metric is undefined are skipped. Returns (low, high), NaN if none was defined.
    """
    import numpy as np

    if len(y) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratified else [np.arange(len(y))]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        try:
            v = float(fn(y[idx], p[idx]))
        except ValueError:
            continue
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
