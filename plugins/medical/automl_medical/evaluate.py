"""The medical domain's final evaluation (`DomainSpec.evaluate`), run once on the best model.

Binary: optional calibration and the decision threshold are fitted on the VALIDATION predictions; the test
rows are then scored once: ROC AUC, sensitivity, specificity, PPV, NPV and balanced accuracy at that
threshold, Brier score, expected calibration error, each with a stratified, seeded 95% bootstrap interval.
metrics.json holds every metric's value under `test`, its interval under `ci95`, and the `operating_point`,
`prevalence` and test `confusion` matrix under `details`; `roc_curve.png` and `calibration_curve.png` go
into the run directory.

Multiclass: what a clinician reads from a differential diagnosis: sensitivity and specificity of each class
(one-vs-rest, at the most probable class), balanced accuracy and top-label calibration error, with intervals.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from automl.api import BINARY, MULTICLASS
from automl_medical import metrics as med
from automl_medical.operating_point import choose_operating_point
from automl_medical.options import MedicalOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl.api import Evaluation

log = logging.getLogger(__name__)

#: metrics.json lists these first (the CLI's summary line shows the first six floats).
HEADLINE = ("roc_auc", "sensitivity", "specificity", "balanced_accuracy", "brier", "ece", "ppv", "npv")


def evaluate(ev: "Evaluation") -> None:
    if not isinstance(ev.options, MedicalOptions):
        ev.options = MedicalOptions()
    opts = ev.options
    if ev.task == BINARY:
        _binary(ev, opts)
    elif ev.task == MULTICLASS:
        _multiclass(ev, opts)


# -- binary ----------------------------------------------------------------------------------------------


def _binary(ev: "Evaluation", opts: MedicalOptions) -> None:
    import numpy as np

    from automl.api import apply_calibration, fit_calibration

    y_val, y_test = ev.y_val.astype(int), ev.y_test.astype(int)
    calibration = fit_calibration(y_val, ev.p_val, opts.calibration)
    if calibration is not None:
        ev.p_val, ev.p_test = apply_calibration(ev.p_val, calibration), apply_calibration(ev.p_test, calibration)
        ev.calibration = calibration
        ev.recompute()
    rule, target = _rule(ev, opts)
    point = choose_operating_point(y_val, ev.p_val, rule, target, opts.threshold)
    ev.threshold = point.threshold
    ev.notes["operating_point"] = point.rule
    if not ev.has_test:  # data.test_size=0: the operating point is chosen; nothing to measure
        ev.details["operating_point"] = {**point.as_dict(), "chosen_on": "validation", "calibration": opts.calibration}
        return

    fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {m.name: m.fn for m in ev.metric_specs}
    fns["ece"] = partial(med.expected_calibration_error, bins=opts.ece_bins)
    for name, fn in med.AT_THRESHOLD.items():
        fns[name] = partial(fn, threshold=point.threshold)
    values = {name: _safe(fn, y_test, ev.p_test) for name, fn in fns.items()}
    intervals = {name: _ci(fn, y_test, ev.p_test, opts) for name, fn in fns.items()}
    tn, fp, fn_, tp = med.confusion(y_test, ev.p_test, point.threshold)

    _replace_metrics(ev, values, intervals, opts, extra={
        "prevalence": float(np.mean(y_test)),
        "confusion": {"tn": tn, "fp": fp, "fn": fn_, "tp": tp},
        "operating_point": {**point.as_dict(), "chosen_on": "validation", "calibration": opts.calibration},
    })
    log.info("operating point (%s, chosen on %d validation rows): threshold %.4f; test sensitivity %.3f, "
             "specificity %.3f", point.rule, point.n_validation, point.threshold, values["sensitivity"],
             values["specificity"])
    _pictures(ev, lambda: _binary_pictures(ev, y_val, y_test, values, opts))


def _rule(ev: "Evaluation", opts: MedicalOptions) -> tuple[str, float]:
    """The operating-point rule and target: the options', unless the search has a constraint on sensitivity or
    specificity (search.constraints=[sensitivity>=0.95]), which the operating point must then meet."""
    for c in ev.constraints:
        if c.metric in ("sensitivity", "recall", "tpr", "specificity", "tnr") and c.op in (">=", ">"):
            rule = "min_sensitivity" if c.metric in ("sensitivity", "recall", "tpr") else "min_specificity"
            log.info("operating point: %s >= %g (lower 95%% bound), from search.constraints", rule[4:], c.bound)
            return rule, float(c.bound)
    return opts.operating_point, opts.target


def _binary_pictures(ev: "Evaluation", y_val: "np.ndarray", y_test: "np.ndarray", values: dict[str, float],
                     opts: MedicalOptions) -> None:
    from automl_medical.plots import CALIBRATION_PNG, ROC_PNG, plot_calibration, plot_roc

    point = (1 - values["specificity"], values["sensitivity"])
    plot_roc(ev.path(ROC_PNG), [("test", y_test, ev.p_test), ("validation", y_val, ev.p_val)], point)
    plot_calibration(ev.path(CALIBRATION_PNG), y_test, ev.p_test, opts.ece_bins, values["ece"])


# -- multiclass ------------------------------------------------------------------------------------------


def _multiclass(ev: "Evaluation", opts: MedicalOptions) -> None:
    from sklearn.metrics import balanced_accuracy_score

    if not ev.has_test:
        return

    y_test = ev.y_test.astype(int)
    labels = [str(c) for c in (ev.classes or range(ev.p_test.shape[1]))]
    fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {m.name: m.fn for m in ev.metric_specs}
    fns["balanced_accuracy"] = lambda y, p: balanced_accuracy_score(y, p.argmax(axis=1))
    fns["ece"] = partial(_top_label_ece, bins=opts.ece_bins)
    for k, label in enumerate(labels):
        for name in ("sensitivity", "specificity", "ppv", "npv"):
            fns[f"{name}[{label}]"] = partial(_one_vs_rest, med.AT_THRESHOLD[name], k)
    values = {name: _safe(fn, y_test, ev.p_test) for name, fn in fns.items()}
    intervals = {name: _ci(fn, y_test, ev.p_test, opts) for name, fn in fns.items()}
    _replace_metrics(ev, values, intervals, opts, extra={"decision": "the most probable class"})

    def pictures() -> None:
        from automl_medical.plots import ROC_PNG, plot_roc

        curves = [(label, (y_test == k).astype(int), ev.p_test[:, k]) for k, label in enumerate(labels)
                  if 0 < (y_test == k).sum() < len(y_test)]
        plot_roc(ev.path(ROC_PNG), curves, title="ROC curves, one class vs the rest (test)")

    _pictures(ev, pictures)


def _one_vs_rest(fn: Callable[..., float], k: int, y: "np.ndarray", p: "np.ndarray") -> float:
    return fn((y == k).astype(int), (p.argmax(axis=1) == k).astype(float), threshold=0.5)


def _top_label_ece(y: "np.ndarray", p: "np.ndarray", bins: int) -> float:
    """Calibration of the confidence in the predicted class (Guo et al. 2017)."""
    return med.expected_calibration_error((p.argmax(axis=1) == y).astype(float), p.max(axis=1), bins)


# -- shared ----------------------------------------------------------------------------------------------


def _safe(fn: Callable[["np.ndarray", "np.ndarray"], float], y: "np.ndarray", p: "np.ndarray") -> float:
    try:
        return float(fn(y, p))
    except ValueError:
        return float("nan")


def _ci(fn: Callable[["np.ndarray", "np.ndarray"], float], y: "np.ndarray", p: "np.ndarray",
        opts: MedicalOptions) -> list[float]:
    from automl.api import bootstrap_ci

    low, high = bootstrap_ci(fn, y, p, n_boot=opts.bootstrap, seed=opts.bootstrap_seed, stratified=True)
    return [low, high]


def _replace_metrics(ev: "Evaluation", values: dict[str, float], intervals: dict[str, list[float]],
                     opts: MedicalOptions, extra: dict[str, Any]) -> None:
    """Headline metrics first, then the rest (a fresh, ordered dict); their intervals; the extras as details."""
    merged = {**ev.metrics, **values}
    ordered = {k: merged[k] for k in HEADLINE if k in merged}
    ordered.update({k: v for k, v in merged.items() if k not in ordered})
    ev.metrics.clear()
    ev.metrics.update(ordered)
    ev.ci95.update({k: intervals[k] for k in ordered if k in intervals})
    ev.details.update(extra)
    ev.details["ci95_method"] = (f"percentile bootstrap over the test rows, stratified by class, "
                                 f"{opts.bootstrap} replicates, seed {opts.bootstrap_seed}")


def _pictures(ev: "Evaluation", draw: Callable[[], None]) -> None:
    """Pictures are a report, not the result: a failure to draw is logged and the run keeps its metrics."""
    if not ev.options.plots:
        return
    try:
        draw()
    except Exception as exc:  # noqa: BLE001
        log.warning("could not draw the evaluation pictures: %s: %s", type(exc).__name__, exc)
