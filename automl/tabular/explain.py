"""Per-row explanations of a tabular predictor: how much each ORIGINAL column moved one row's score.

Integrated gradients (Sundararajan, Taly and Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
arXiv:1703.01365): a row's attribution is the gradient of the score integrated along the straight path from
a baseline to the row, times their difference. By its completeness axiom the contributions of a row add up to
score(row) - score(baseline); `Explanation.delta` is what the numerical integral misses.

The path runs through the network's continuous inputs, and captum's `IntegratedGradients` integrates along it:

- a numeric column is its scaled value plus, when it had missing values in training, its missing indicator
  (`automl.tabular.preprocessing`): both dimensions move, and their attributions add up to the column's;
- a categorical column enters as an integer code, which has no path between two codes: the path runs through
  the vector its embedding makes of it instead (every module that turns codes into vectors: `nn.Embedding`, a
  stacked table...), and the column's contribution is the sum over that vector (over every member's, for an
  averaged model). Which elements belong to which column is found by probing, so any architecture works.

Quadrature: Gauss-Legendre on the whole path first; a path segment whose own completeness gap exceeds its share
of `tolerance` is cut in two and integrated again, so kinks (ReLU) and steep stretches (a quantile transform
of a discrete column) get the points they need while smooth rows cost one pass. The network runs in float64.

The score explained (`output`): binary, P(positive) as `predict_proba` returns it, through the saved
calibration ("probability", default), P(positive) before calibration ("uncalibrated") or its logit ("logit");
multiclass, the probability of one class (each row's most probable unless `target` names one); regression, the
prediction in the target's units. The baseline is one reference row: every numeric column at its training
median (not missing), every categorical column at code 0, the code of a missing, unseen or rare category.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError, DataError
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

#: Quadrature points per path segment, path points per forward pass, times a segment may be cut in two, and the
#: completeness gap beyond which an explanation is refused.
STEPS, CUT_STEPS, SAMPLES_PER_PASS, MAX_CUTS, REFUSE_ABOVE = 32, 8, 8192, 40, 1e-3
#: A segment's gap this small is rounding (scores pass through float32 somewhere in most networks).
NOISE = 1e-7
METHOD = "gausslegendre"
#: What a binary predictor's explanation may explain (`output=`).
BINARY_OUTPUTS = ("probability", "uncalibrated", "logit")
BASELINE = ("every numeric column at its training median (not missing), every categorical column at code 0 "
            "(missing, unseen or rare)")


class ExplainTimeout(AutoMLError):
    """`explain(..., time_limit=)` ran out of time."""


@dataclass(frozen=True)
class Explanation:
    """Integrated-gradients contributions of each original column, one row per input row.

    Row by row, `contributions.sum(axis=1) == score - baseline_score - delta`, and |delta| is below the
    tolerance asked for (completeness).
    """

    #: One row per input row (same index), one column per original feature column of the model.
    contributions: "pd.DataFrame"
    #: The explained score of each row (see `explained`).
    score: "pd.Series"
    #: The explained score of the baseline row (the same for every row, except in a multiclass explanation of
    #: each row's own most probable class).
    baseline_score: "pd.Series"
    #: score - baseline_score - the row's contributions: what the numerical integral missed.
    delta: "pd.Series"
    #: What score is explained, in words, e.g. "P(Status = bad) as predict_proba returns it".
    explained: str
    #: The baseline, in words.
    baseline: str
    #: The method, in words.
    method: str

    def top(self, n: int = 3) -> "pd.DataFrame":
        """The `n` largest contributions of each row by absolute value, largest first: columns reason_1,
        contribution_1, ..., reason_n, contribution_n (a positive contribution raised the score)."""
        import numpy as np
        import pandas as pd

        values = self.contributions.to_numpy()
        names = np.asarray(self.contributions.columns, dtype=object)
        n = max(0, min(n, values.shape[1]))
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :n]
        out = {}
        for k in range(n):
            out[f"reason_{k + 1}"] = names[order[:, k]]
            out[f"contribution_{k + 1}"] = values[np.arange(len(values)), order[:, k]]
        return pd.DataFrame(out, index=self.contributions.index)


def explain(predictor: Any, rows: "pd.DataFrame", *, output: str = "probability", target: Any = None,
            tolerance: float = 1e-4, n_steps: Optional[int] = None, max_cuts: int = MAX_CUTS,
            time_limit: Optional[float] = None) -> Explanation:
    """Explain the scores of `rows` (raw rows, as `predict` takes them) by integrated gradients.

    :param predictor: a `TabularPredictor` (`automl.load(run_dir)` of a tabular run).
    :param output: binary tasks: "probability" (as `predict_proba` returns it), "uncalibrated" or "logit".
    :param target: multiclass tasks: the class whose probability is explained (default: each row's most
        probable class).
    :param tolerance: the largest completeness gap accepted per row; path segments are cut until it holds.
    :param n_steps: integrate each row in one pass of this many points instead (no cutting, no guarantee).
    :param max_cuts: how many times a path segment may be cut in two.
    :param time_limit: seconds after which to give up with an `AutoMLError` (checked between rounds).
    """
    import pandas as pd
    import torch

    if not isinstance(rows, pd.DataFrame):
        raise DataError(f"explain takes a pandas DataFrame of raw rows, got {type(rows).__name__}")
    score, explained = _score_function(predictor, output, target)
    pre = predictor.preprocessor
    x_num, x_cat = (torch.from_numpy(a) for a in pre.transform(rows))
    b_num, b_cat = (torch.from_numpy(a) for a in pre.transform(_baseline_frame(pre)))
    x_num, b_num = x_num.double(), b_num.double()
    net = _Scored(copy.deepcopy(predictor.model).double().eval(), score)
    layers = _code_layers(net, x_num[:2], x_cat[:2]) if x_cat.shape[1] and len(rows) else []
    taps, handles = _row_first_taps(net, layers, x_num, x_cat)
    threads = torch.get_num_threads()
    # many small passes: one thread beats several waiting on each other (3x here, on two busy cores)
    torch.set_num_threads(1)
    try:
        classes = _target_classes(predictor, net, x_num, x_cat, target) if predictor.task == MULTICLASS else None
        path = _Path(net, taps, x_num, x_cat, b_num, b_cat, pre.cardinalities)
        deadline = time.perf_counter() + time_limit if time_limit is not None else None
        contributions, used = path.integrate(classes, tolerance, n_steps, max_cuts, _columns(predictor), pre.state,
                                             deadline)
        with torch.no_grad():
            scores = _select(net(x_num, x_cat), classes).numpy()
            at_baseline = net(b_num, b_cat)[0]
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.remove()
    import numpy as np

    baseline_scores = at_baseline[classes].numpy() if classes is not None else np.full(len(rows), float(at_baseline))
    delta = scores - baseline_scores - contributions.sum(axis=1)
    worst = float(np.abs(delta).max()) if len(delta) else 0.0
    if worst > REFUSE_ABOVE and not n_steps:
        raise AutoMLError(
            f"integrated gradients did not converge on {int((np.abs(delta) > REFUSE_ABOVE).sum())} row(s) "
            f"(completeness gap up to {worst:.2g} after {used} rounds of cutting the path) for family "
            f"{predictor.meta.lead.family!r}: its "
            "score jumps between the baseline and the row (the network is not continuous in its inputs), which "
            "integrated gradients cannot split")
    method = (f"integrated gradients (Sundararajan et al. 2017) by captum's IntegratedGradients along the straight "
              f"path from the baseline, {METHOD} quadrature ({n_steps or STEPS} points"
              + (")" if n_steps else f"; segments whose gap is too large cut in two, {CUT_STEPS} points each, until "
                                     f"each row's gap is below {tolerance:g}: {used} rounds)")
              + "; numeric columns through their scaled value and missing indicator, dates through their calendar "
                "features, categorical columns through "
                "their embeddings")
    return Explanation(
        contributions=pd.DataFrame(contributions, index=rows.index, columns=_columns(predictor)),
        score=pd.Series(scores, index=rows.index, name="score"),
        baseline_score=pd.Series(baseline_scores, index=rows.index, name="baseline_score"),
        delta=pd.Series(delta, index=rows.index, name="delta"), explained=explained, baseline=BASELINE,
        method=method,
    )


# -- the score ---------------------------------------------------------------------------------------------


def _score_function(predictor: Any, output: str, target: Any) -> tuple[Any, str]:
    """The function from the network's outputs to the explained score, and its description."""
    task, name = predictor.task, predictor.target
    if task == BINARY:
        if output not in BINARY_OUTPUTS:
            raise AutoMLError(f"output={output!r} is not one a binary predictor explains: use one of "
                              f"{', '.join(BINARY_OUTPUTS)}")
        what = f"P({name} = {predictor.positive_class})"
        calibration = predictor.meta.calibration
        if output == "logit":
            return (lambda out: out.squeeze(-1)), f"the logit of {what} before calibration"
        if output == "uncalibrated" or not calibration:
            return (lambda out: out.squeeze(-1).sigmoid()), f"{what} before calibration" if calibration else what
        calibrate = _calibration(calibration)
        return (lambda out: calibrate(out.squeeze(-1).sigmoid())), \
            f"{what} as predict_proba returns it (with its {calibration['method']} calibration)"
    if task == MULTICLASS:
        if target is not None and target not in predictor.classes:
            raise DataError(f"target={target!r} is not a class of this predictor: use one of {predictor.classes}")
        which = f"{target!r}" if target is not None else "each row's most probable class"
        return (lambda out: out.softmax(-1)), f"the probability of {which} ({name})"
    if task == REGRESSION:
        mean, std = predictor.meta.data["y_mean"], predictor.meta.data["y_std"]
        return (lambda out: out.squeeze(-1) * std + mean), f"the predicted {name}"
    raise AutoMLError(f"explanations cover binary, multiclass and regression predictors, not {task!r}")


def _calibration(calibration: dict[str, Any]) -> Any:
    """`automl.tabular.calibration.apply_calibration` in torch, so gradients flow through it: Platt scaling
    of the logit (clipped as there), or the isotonic map's linear interpolation (flat beyond its ends)."""
    import torch

    if calibration["method"] == "platt":
        coef, intercept, eps = float(calibration["coef"]), float(calibration["intercept"]), 1e-6

        def platt(p: "torch.Tensor") -> "torch.Tensor":
            p = p.clamp(eps, 1 - eps)
            return torch.sigmoid(coef * torch.log(p / (1 - p)) + intercept)

        return platt
    xs, ys = torch.tensor(calibration["x"]), torch.tensor(calibration["y"])

    def isotonic(p: "torch.Tensor") -> "torch.Tensor":
        x, y = xs.to(p.dtype), ys.to(p.dtype)
        if len(x) == 1:
            return torch.zeros_like(p) + y[0]
        q = p.clamp(x[0], x[-1])
        i = torch.searchsorted(x, q.detach(), right=True).clamp(1, len(x) - 1)
        x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
        width = x1 - x0
        w = torch.where(width > 0, (q - x0) / torch.where(width > 0, width, torch.ones_like(width)), 0.0)
        return y0 + w * (y1 - y0)

    return isotonic


def _target_classes(predictor: Any, net: Any, x_num: "torch.Tensor", x_cat: "torch.Tensor",
                    target: Any) -> "torch.Tensor":
    import torch

    if target is not None:
        return torch.full((len(x_num),), predictor.classes.index(target), dtype=torch.long)
    with torch.no_grad():
        return net(x_num, x_cat).argmax(-1) if len(x_num) else torch.zeros(0, dtype=torch.long)


def _select(out: "torch.Tensor", classes: Optional["torch.Tensor"]) -> "torch.Tensor":
    if classes is None:
        return out
    return out.gather(1, classes.reshape(-1, 1)).squeeze(1)


def _Scored(net: "torch.nn.Module", score: Any) -> "torch.nn.Module":
    """The predictor's network returning the explained score."""
    from torch import nn

    class Scored(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x_num: "torch.Tensor", x_cat: "torch.Tensor") -> "torch.Tensor":
            return score(self.net(x_num, x_cat))

    return Scored().eval()


# -- where the categorical codes become vectors ------------------------------------------------------------


def _code_layers(net: "torch.nn.Module", x_num: "torch.Tensor", x_cat: "torch.Tensor") -> list[Any]:
    """The modules that turn categorical codes into vectors: the innermost modules whose tensor inputs are all
    integers (`nn.Embedding`, a stacked embedding table...)."""
    import torch

    integer: dict[Any, bool] = {}  # module -> all of its tensor inputs are integers (False: some are)

    def record(module: Any, args: tuple) -> None:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        ints = [not (t.is_floating_point() or t.is_complex()) for t in tensors]
        if any(ints):
            integer[module] = all(ints)

    hooks = [m.register_forward_pre_hook(record) for m in net.net.modules()]
    try:
        with torch.no_grad():
            net(x_num, x_cat)
    finally:
        for h in hooks:
            h.remove()

    def innermost(m: Any) -> bool:
        return not any(d in integer for d in m.modules() if d is not m)

    mixed = [m for m, only in integer.items() if not only and innermost(m)]
    if mixed:
        raise AutoMLError(f"cannot explain this network: its {type(mixed[0]).__name__} takes categorical codes and "
                          "numeric inputs together, so no layer holds the categorical columns alone")
    return [m for m, only in integer.items() if only and innermost(m)]


def _row_first_taps(net: "torch.nn.Module", layers: list[Any], x_num: "torch.Tensor",
                    x_cat: "torch.Tensor") -> tuple[list[Any], list[Any]]:
    """An identity "tap" after each code layer that sees its output with the rows first (a stacked layer puts
    its members first). A tap's `replace` slot, when set, substitutes the layer's output: that is how points
    of the path are fed in. Returns the taps and the hook handles that wire them in (remove them when done)."""
    import torch
    from torch import nn

    class Tap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.replace: Optional[torch.Tensor] = None
            self.seen: Optional[torch.Tensor] = None

        def forward(self, out: "torch.Tensor") -> "torch.Tensor":
            self.seen = out.detach()
            return out if self.replace is None else self.replace

    def shapes(n: int) -> list["torch.Size"]:
        seen: dict[Any, torch.Size] = {}

        def keep(module: Any, args: tuple, out: "torch.Tensor") -> None:  # None: the output stays as it is
            seen[module] = out.shape

        hooks = [m.register_forward_hook(keep) for m in layers]
        try:
            with torch.no_grad():
                net(x_num[:1].expand(n, -1), x_cat[:1].expand(n, -1))
        finally:
            for h in hooks:
                h.remove()
        return [seen[m] for m in layers]

    taps, handles = [], []
    for layer, two, three in zip(layers, shapes(2), shapes(3)):
        dims = [d for d, (a, b) in enumerate(zip(two, three)) if (a, b) == (2, 3)]
        if len(two) != len(three) or len(dims) != 1:
            for h in handles:
                h.remove()
            raise AutoMLError(f"cannot explain this network: the rows of its {type(layer).__name__}'s output cannot "
                              "be told apart")
        tap, row = Tap(), dims[0]

        def rows_first(module: Any, args: tuple, out: "torch.Tensor", tap: Any = tap, row: int = row) -> Any:
            return tap(out.movedim(row, 0)).movedim(0, row)

        taps.append(tap)
        handles.append(layer.register_forward_hook(rows_first))
    return taps, handles


def _code_columns(net: "torch.nn.Module", taps: list[Any], x_num: "torch.Tensor", x_cat: "torch.Tensor",
                  cardinalities: tuple[int, ...]) -> list["np.ndarray"]:
    """For each tap, the categorical column each element of one row's output belongs to (-1: none). Found by
    probing: changing one column's code moves exactly that column's elements; an element moved by two columns
    cannot be split between them and is refused."""
    import numpy as np
    import torch

    def outputs(codes: "torch.Tensor") -> list["torch.Tensor"]:
        with torch.no_grad():
            net(x_num[:1], codes)
        return [t.seen[0].clone() for t in taps]

    base = outputs(x_cat[:1])
    columns = [np.full(o.shape, -1) for o in base]
    for j, size in enumerate(cardinalities):
        if size < 2:  # one code only: nothing moves, and the column contributes nothing
            continue
        codes = x_cat[:1].clone()
        codes[0, j] = 1 if int(codes[0, j]) == 0 else 0
        for k, out in enumerate(outputs(codes)):
            moved = (out != base[k]).numpy()
            if (moved & (columns[k] >= 0)).any():
                raise AutoMLError("cannot explain this network: an output of its categorical embeddings depends on "
                                  "several categorical columns at once")
            columns[k][moved] = j
    return columns


# -- the path and its integral -----------------------------------------------------------------------------


class _Path:
    """The straight path from the baseline to each row through the network's continuous inputs (numeric values,
    embedding vectors), integrated segment by segment with captum's `IntegratedGradients`."""

    def __init__(self, net: Any, taps: list[Any], x_num: "torch.Tensor", x_cat: "torch.Tensor",
                 b_num: "torch.Tensor", b_cat: "torch.Tensor", cardinalities: tuple[int, ...]) -> None:
        import torch

        self.net, self.taps, self.x_cat = net, taps, x_cat
        self.columns = _code_columns(net, taps, x_num, x_cat, tuple(cardinalities)) if taps else []
        with torch.no_grad():
            net(x_num, x_cat)
            ends = [t.seen.clone() for t in taps]
            net(b_num.expand(len(x_num), -1), b_cat.expand(len(x_num), -1))
            starts = [t.seen.clone() for t in taps]
        self.start = [b_num.expand(len(x_num), -1)] + starts
        self.end = [x_num] + ends

    def _forward(self, x_num: "torch.Tensor", *rest: "torch.Tensor") -> "torch.Tensor":
        """The score at points of the path: numeric values and embedding vectors given, codes ignored."""
        *vectors, codes = rest
        for tap, vector in zip(self.taps, vectors):
            tap.replace = vector
        try:
            return self.net(x_num, codes)
        finally:
            for tap in self.taps:
                tap.replace = None

    def _at(self, rows: "np.ndarray", alpha: "np.ndarray") -> tuple["torch.Tensor", ...]:
        import torch

        a = torch.as_tensor(alpha, dtype=torch.float64)
        idx = torch.as_tensor(rows)
        return tuple(s[idx] + a.reshape(-1, *([1] * (s.dim() - 1))) * (e[idx] - s[idx])
                     for s, e in zip(self.start, self.end))

    def integrate(self, classes: Optional["torch.Tensor"], tolerance: float, n_steps: Optional[int], max_cuts: int,
                  columns: list[str], state: dict[str, Any],
                  deadline: Optional[float] = None) -> tuple["np.ndarray", int]:
        """Contributions per row and original column, and how many rounds of cuts it took.

        Every segment [lo, hi] of a row is integrated with its own completeness gap. A row whose gaps add up to
        at most `tolerance` is done; in the others, segments within their share (`tolerance * (hi - lo)`) are
        kept and the rest cut in two for the next round. A segment still off after `max_cuts` rounds is kept:
        the final check of the whole row reports it."""
        import numpy as np
        import torch
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(self._forward, multiply_by_inputs=True)
        n = len(self.x_cat)
        out, settled = np.zeros((n, len(columns))), np.zeros(n)
        rows, lo, hi = np.arange(n), np.zeros(n), np.ones(n)
        steps, rounds = n_steps or STEPS, 0
        while len(rows):
            gaps, parts = np.zeros(len(rows)), np.zeros((len(rows), len(columns)))
            per = max(1, SAMPLES_PER_PASS // steps)
            for s in range(0, len(rows), per):
                part = slice(s, s + per)
                r = torch.as_tensor(rows[part])
                attributions, gap = ig.attribute(self._at(rows[part], hi[part]),
                                                 baselines=self._at(rows[part], lo[part]),
                                                 target=classes[r] if classes is not None else None, n_steps=steps,
                                                 method=METHOD, additional_forward_args=(self.x_cat[r],),
                                                 internal_batch_size=SAMPLES_PER_PASS, return_convergence_delta=True)
                gaps[part] = gap.detach().numpy()
                parts[part] = _per_column([a.detach().numpy() for a in attributions], self.columns, state, columns)
            final = bool(n_steps) or rounds >= max_cuts
            total = settled[rows] + np.bincount(rows, np.abs(gaps), minlength=n)[rows]
            keep = final | (total <= tolerance) | (np.abs(gaps) <= tolerance * (hi - lo)) | (np.abs(gaps) <= NOISE)
            np.add.at(out, rows[keep], parts[keep])
            np.add.at(settled, rows[keep], np.abs(gaps[keep]))
            cut = ~keep
            mid = (lo[cut] + hi[cut]) / 2
            rows, lo, hi = np.r_[rows[cut], rows[cut]], np.r_[lo[cut], mid], np.r_[mid, hi[cut]]
            rounds += bool(len(rows))
            steps = CUT_STEPS  # a cut segment is short: fewer points resolve it
            if deadline is not None and len(rows) and time.perf_counter() > deadline:
                raise ExplainTimeout(f"integrated gradients did not finish in the time given ({len(rows)} path "
                                     f"segments left after {rounds} rounds): explain fewer rows, or give more time")
        return out, rounds

# -- from the network's inputs back to the original columns ------------------------------------------------


def _columns(predictor: Any) -> list[str]:
    """The model's feature columns in the data's order (numeric and categorical as the preprocessor has them)."""
    pre = predictor.preprocessor
    known = pre.numeric + pre.dates + pre.categorical
    ordered = [c for c in (predictor.meta.data.get("columns") or {}) if c in known]
    return ordered + [c for c in known if c not in ordered]


def _baseline_frame(pre: Any) -> "pd.DataFrame":
    """The baseline as a raw row: medians for numeric columns, missing for categorical ones (code 0) and for
    dates (each calendar feature imputed with its training median)."""
    import numpy as np
    import pandas as pd

    medians = pre.state.get("medians", [])
    values: dict[str, list[Any]] = {c: [float(m)] for c, m in zip(pre.numeric, medians)}
    values.update({c: [pd.NaT] for c in pre.dates})
    values.update({c: [np.nan] for c in pre.categorical})
    return pd.DataFrame(values)


def _per_column(attributions: list["np.ndarray"], code_columns: list["np.ndarray"], state: dict[str, Any],
                columns: list[str]) -> "np.ndarray":
    """Sum the attributions of the network's inputs (numeric values, then each tap's vectors) into one
    contribution per original column."""
    import numpy as np

    categorical = list(state.get("categorical", []))
    # x_num's values: the numeric columns, then each date column's calendar features, which add up to the date
    owners = list(state.get("numeric", [])) + [d["column"] for d in state.get("dates", []) for _ in d["parts"]]
    num = attributions[0]
    out = np.zeros((num.shape[0], len(columns)))
    where = {c: i for i, c in enumerate(columns)}
    for i, col in enumerate(owners):
        out[:, where[col]] += num[:, i]
    for k, i in enumerate(state.get("indicators", [])):  # the missing indicators follow the scaled values
        out[:, where[owners[i]]] += num[:, len(owners) + k]
    for j, col in enumerate(categorical):
        for labels, attr in zip(code_columns, attributions[1:]):
            mine = labels == j
            if mine.any():
                out[:, where[col]] += attr[:, mine].sum(axis=1)
    return out
