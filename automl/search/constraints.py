"""What a model must meet and what else it is judged on: `search.constraints` and `search.objectives`.

Each trial is judged on its validation predictions (out of fold when cross-validated), never on test rows.

A constraint is `METRIC OP BOUND` (OP: >=, <=, >, <), e.g. `sensitivity>=0.95`, `dp_difference<=0.05`,
`latency_ms<=2`, `roc_auc>=0.8`. METRIC is

- a decision rate at the trial's threshold (`automl.decision.RATES`: sensitivity, specificity, ppv, npv,
  fpr, selection_rate...), judged by its 95% bound, not its point estimate;
- a fairness difference at that threshold over the groups of `data.sensitive` (`automl.fairness`):
  `dp_difference` (demographic parity), `eo_difference` (equal opportunity), `eodds_difference` (equalised
  odds);
- `latency_ms`: the median milliseconds to score one row with the trial's model(s) on this machine;
- any registered metric of the task, on the predictions (`roc_auc`, `log_loss`...).

The threshold of a binary trial is chosen on the same predictions (`automl.decision.choose_threshold`): the
one with the highest balanced accuracy among those where every rate constraint holds by its bound. A trial
that meets every constraint is feasible; the others are marked infeasible in the leaderboard with the value
that missed, never become the model, and steer the sampler away: their violations go to Optuna's
constrained TPE (`Trial.set_constraint`).

`search.objectives=[roc_auc, latency_ms]` makes the study multi-objective (TPE's multi-objective mode); every
objective is measured the same way and the final model is one trial of the Pareto front, picked by
`search.pick`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from automl.decision import RATES, RateRequirement
from automl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl.host import PluginHost

FAIRNESS = {"dp_difference": "demographic_parity_difference", "eo_difference": "equal_opportunity_difference",
            "eodds_difference": "equalized_odds_difference"}
LATENCY = "latency_ms"
_SYNTAX = re.compile(r"^\s*(?P<metric>[A-Za-z_][\w]*)\s*(?P<op>>=|<=|>|<)\s*(?P<bound>[-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    bound: float
    #: rate | fairness | latency | metric
    kind: str

    @property
    def text(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """How far `value` misses (<= 0: met). NaN (undefined) misses by 1."""
        import math

        if value is None or not math.isfinite(value):
            return 1.0
        return self.bound - value if self.op in (">=", ">") else value - self.bound


def parse(text: str, task: str, metrics: dict[str, Any], has_sensitive: bool) -> Constraint:
    m = _SYNTAX.match(str(text))
    if not m:
        raise ConfigError(f"search.constraints: {text!r} is not METRIC>=BOUND or METRIC<=BOUND (e.g. "
                          "sensitivity>=0.9, dp_difference<=0.05, latency_ms<=2)")
    metric, op, bound = m.group("metric"), m.group("op"), float(m.group("bound"))
    kind = metric_kind(metric, task, metrics, has_sensitive, "search.constraints")
    return Constraint(metric, op, bound, kind)


def metric_kind(metric: str, task: str, metrics: dict[str, Any], has_sensitive: bool, key: str) -> str:
    if metric in RATES or metric in FAIRNESS:
        if task != "binary":
            raise ConfigError(f"{key}: {metric} is a rate of a binary decision; this is a {task} task")
        if metric in FAIRNESS and not has_sensitive:
            raise ConfigError(f"{key}: {metric} compares the groups of a sensitive attribute: set "
                              "data.sensitive=COLUMN")
        return "rate" if metric in RATES else "fairness"
    if metric == LATENCY:
        return "latency"
    if metric in metrics and task in metrics[metric].tasks:
        return "metric"
    known = sorted([*RATES, *FAIRNESS, LATENCY, *(n for n, s in metrics.items() if task in s.tasks)])
    raise ConfigError(f"{key}: unknown metric {metric!r} for a {task} task: use one of {', '.join(known)}")


@dataclass
class Judgement:
    """What one trial (or the final model) measured: each constraint's and objective's value, the violations,
    and the decision threshold they were judged at."""

    values: dict[str, float] = field(default_factory=dict)
    violations: list[float] = field(default_factory=list)
    threshold: Optional[float] = None
    #: The constraints missed, as text (empty: feasible).
    missed: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.missed


@dataclass
class Requirements:
    """The run's constraints and objectives, parsed and checked once (`from_config`)."""

    constraints: list[Constraint]
    #: Objective names (multi-objective studies), in order; their directions.
    objectives: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, constraints: list[str], objectives: Optional[list[str]], task: str, host: "PluginHost",
                    has_sensitive: bool) -> Optional["Requirements"]:
        if not constraints and not objectives:
            return None
        metrics = {m.name: m for m in host.metrics}
        parsed = [parse(c, task, metrics, has_sensitive) for c in constraints]
        names, directions = [], []
        for name in objectives or []:
            kind = metric_kind(name, task, metrics, has_sensitive, "search.objectives")
            if kind in ("rate", "fairness"):
                raise ConfigError(f"search.objectives: {name} depends on a threshold; use it as a constraint "
                                  f"(search.constraints=[\"{name}>=...\"]) and a threshold-free objective instead")
            names.append(name)
            directions.append("minimize" if name == LATENCY else metrics[name].direction)
        return cls(parsed, names, directions, metrics)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def measures_latency(self) -> bool:
        return LATENCY in self.objectives or any(c.kind == "latency" for c in self.constraints)

    def judge(self, y: "np.ndarray", p: "np.ndarray", side: dict[str, "np.ndarray"],
              latency: Optional[Callable[[], float]] = None, threshold: Optional[float] = None) -> Judgement:
        """Measure every constraint and objective on (labels, predictions); `threshold`: judge at this one
        instead of choosing it."""
        import numpy as np

        from automl.decision import choose_threshold, rates
        from automl.fairness import differences, group_labels

        out = Judgement()
        measured_latency: Optional[float] = None
        binary = np.ndim(p) == 1
        needs_threshold = any(c.kind in ("rate", "fairness") for c in self.constraints)
        if binary and needs_threshold:
            required = [RateRequirement(c.metric, c.op, c.bound) for c in self.constraints if c.kind == "rate"]
            if threshold is None:
                threshold, _, _, _ = choose_threshold(y, p, required)
            out.threshold = float(threshold)
            r = rates(y, p, np.array([threshold]))
        for c in self.constraints:
            if c.kind == "rate":
                bounds = r.lower if c.op in (">=", ">") else r.upper
                value = float(bounds[c.metric][0])
                out.values[f"{c.metric}_{'lower' if c.op in ('>=', '>') else 'upper'}_bound"] = round(value, 6)
            elif c.kind == "fairness":
                attribute = next(iter(side))
                groups = group_labels(side[attribute], side[attribute])
                from automl.fairness import MIN_GROUP

                sizes = {g: int((groups == g).sum()) for g in set(groups.tolist())}
                compared = [g for g, n in sizes.items() if n >= MIN_GROUP]
                diffs = differences(np.asarray(y).astype(int), p >= out.threshold, groups, compared)
                value = diffs[FAIRNESS[c.metric]]
                out.values[c.metric] = round(value, 6) if np.isfinite(value) else value
            elif c.kind == "latency":
                measured_latency = latency() if (latency is not None and measured_latency is None) else \
                    measured_latency
                value = measured_latency if measured_latency is not None else float("nan")
                out.values[LATENCY] = value
            else:
                value = self._metric(c.metric, y, p)
                out.values[c.metric] = value
            v = c.violation(value)
            out.violations.append(float(v))
            if v > 1e-12:
                out.missed.append(f"{c.text} ({value:.4g})" if np.isfinite(value) else f"{c.text} (undefined)")
        for name in self.objectives:
            if name == LATENCY:
                if measured_latency is None and latency is not None:
                    measured_latency = latency()
                out.values[LATENCY] = measured_latency if measured_latency is not None else float("nan")
            elif name not in out.values:
                out.values[name] = self._metric(name, y, p)
        return out

    def _metric(self, name: str, y: "np.ndarray", p: "np.ndarray") -> float:
        try:
            return float(self.metrics[name].fn(y, p))
        except ValueError:
            return float("nan")

    def objective_values(self, judgement: Judgement) -> list[float]:
        return [float(judgement.values[name]) for name in self.objectives]


def measure_latency(predict_one: Callable[[], Any], repeats: int = 15) -> float:
    """Median milliseconds of `predict_one()` (one row through the model), after two warm-up calls."""
    import statistics

    for _ in range(2):
        predict_one()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict_one()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 4)
