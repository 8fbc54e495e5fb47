"""The whole tabular predictor as one torch module, for exporters: raw numbers and category codes in,
probabilities (or values) out.

`PredictorGraph` = `Preprocess` (exactly `TabularPreprocessor.transform`, built from its JSON `state`) ->
the predictor's network (one, fold models or an ensemble: `predictor.model`, as it is) ->
`outputs_to_scores` -> regression's rescaling or binary calibration (`Calibrate`, exactly
`apply_calibration`) -> probabilities per class in `classes` order.

Inputs: `numeric` float64 (n, numeric columns) with NaN for a missing value, in the preprocessor's column
order; `codes` int64 (n, categorical columns), the preprocessor's category codes (0: missing or unseen).
Text is mapped to codes in front of this module: by ONNX's LabelEncoder inside an ONNX file
(`automl.export.onnx`), by the export's `inputs.json` for TorchScript.

Every part refuses, with one line, a preprocessing state or calibration it does not know: an export must
never compute something other than the predictor it claims to be.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from automl.errors import AutoMLError
from automl.tabular.objective import outputs_to_scores
from automl.tasks import BINARY, MULTICLASS, REGRESSION

#: The preprocessing state this module reproduces (format 1 of `automl.tabular.preprocessing`).
PREPROCESSING_FORMAT = 1
PREPROCESSING_KEYS = frozenset({"format", "numeric", "categorical", "medians", "indicators", "mean", "scale",
                                "codes"})
CALIBRATIONS = ("platt", "isotonic")
#: `automl.tabular.calibration`'s clip before the logit (Platt scaling).
PLATT_EPS = 1e-6


def _refuse(what: str) -> AutoMLError:
    return AutoMLError(f"cannot export this predictor: {what}; this version of automl's exporter does not "
                       "reproduce it (score with automl.load(run_dir) instead, or update automl)")


class Preprocess(nn.Module):
    """`TabularPreprocessor.transform` on tensors: median imputation with missing indicators, then standard
    scaling, in float64 like numpy, cast to float32 at the end."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        unknown = sorted(set(state) - PREPROCESSING_KEYS)
        if unknown:
            raise _refuse(f"its preprocessing has step(s) {', '.join(unknown)}")
        if state.get("format") != PREPROCESSING_FORMAT:
            raise _refuse(f"its preprocessing is format {state.get('format')} (the exporter reads "
                          f"{PREPROCESSING_FORMAT})")
        self.numeric: list[str] = list(state.get("numeric", []))
        self.categorical: list[str] = list(state.get("categorical", []))
        n = len(self.numeric)
        medians, indicators = state.get("medians", []), state.get("indicators", [])
        mean, scale = state.get("mean", []), state.get("scale", [])
        if len(medians) != n or len(mean) != n + len(indicators) or len(scale) != len(mean) or \
                any(not isinstance(i, int) or not 0 <= i < n for i in indicators):
            raise _refuse("its preprocessing state is inconsistent (medians, indicators, mean and scale do not "
                          "match the numeric columns)")
        codes = state.get("codes", [])
        if len(codes) != len(self.categorical) or not all(
                isinstance(c, dict) and all(isinstance(v, int) and v >= 0 for v in c.values()) for c in codes):
            raise _refuse("its category codes do not match its categorical columns")
        f64 = torch.float64
        self.register_buffer("medians", torch.tensor(medians, dtype=f64).reshape(1, n))
        self.register_buffer("indicators", torch.tensor(indicators, dtype=torch.long))
        self.register_buffer("mean", torch.tensor(mean, dtype=f64).reshape(1, -1))
        self.register_buffer("scale", torch.tensor(scale, dtype=f64).reshape(1, -1))
        self.has_indicators = bool(indicators)
        self.codes: list[dict[str, int]] = [dict(c) for c in codes]

    def forward(self, numeric: torch.Tensor) -> torch.Tensor:
        absent = torch.isnan(numeric)
        x = torch.where(absent, self.medians, numeric)
        if self.has_indicators:
            x = torch.cat([x, absent.index_select(1, self.indicators).to(torch.float64)], dim=1)
        return ((x - self.mean) / self.scale).to(torch.float32)


class Calibrate(nn.Module):
    """`automl.tabular.calibration.apply_calibration` on P(positive), from the same JSON.

    Isotonic calibration is linear interpolation through breakpoints (`np.interp`, flat outside them),
    written as a sum of clamped hinges so that it needs only Min, Max, Sub, Mul and MatMul:
    f(p) = y_0 + sum_i slope_i * (clamp(p, x_i, x_{i+1}) - x_i), plus a step where two breakpoints share x.
    """

    def __init__(self, calibration: dict[str, Any]) -> None:
        super().__init__()
        method = calibration.get("method")
        if method not in CALIBRATIONS:
            raise _refuse(f"its calibration method is {method!r}")
        self.method = method
        f64 = torch.float64
        if method == "platt":
            self.coef, self.intercept = float(calibration["coef"]), float(calibration["intercept"])
            return
        x, y = list(map(float, calibration["x"])), list(map(float, calibration["y"]))
        if len(x) != len(y) or not x or any(b < a for a, b in zip(x, x[1:])):
            raise _refuse("its isotonic calibration's breakpoints are not increasing")
        lo, hi, slope, steps_at, steps = [], [], [], [], []
        for i in range(len(x) - 1):
            if x[i + 1] > x[i]:
                lo.append(x[i]), hi.append(x[i + 1]), slope.append((y[i + 1] - y[i]) / (x[i + 1] - x[i]))
            elif y[i + 1] != y[i]:  # a vertical jump
                steps_at.append(x[i]), steps.append(y[i + 1] - y[i])
        self.register_buffer("y0", torch.tensor([y[0]], dtype=f64))
        self.register_buffer("lo", torch.tensor(lo, dtype=f64).reshape(1, -1))
        self.register_buffer("hi", torch.tensor(hi, dtype=f64).reshape(1, -1))
        self.register_buffer("slope", torch.tensor(slope, dtype=f64).reshape(-1, 1))
        self.register_buffer("steps_at", torch.tensor(steps_at, dtype=f64).reshape(1, -1))
        self.register_buffer("steps", torch.tensor(steps, dtype=f64).reshape(-1, 1))
        self.has_segments, self.has_steps = bool(lo), bool(steps)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        if self.method == "platt":
            p = p.clamp(PLATT_EPS, 1 - PLATT_EPS)
            return torch.sigmoid(self.coef * torch.log(p / (1 - p)) + self.intercept).to(torch.float64)
        q = p.to(torch.float64).unsqueeze(1)
        out = self.y0.expand(q.shape[0], 1)
        if self.has_segments:
            out = out + (torch.minimum(torch.maximum(q, self.lo), self.hi) - self.lo) @ self.slope
        if self.has_steps:
            out = out + (q >= self.steps_at).to(torch.float64) @ self.steps
        return out.squeeze(1)


class PredictorGraph(nn.Module):
    """A `TabularPredictor` end to end: `forward(numeric, codes)` returns probabilities (n, classes) in the
    predictor's class order, or regression values (n,)."""

    def __init__(self, predictor: Any) -> None:
        super().__init__()
        meta = predictor.meta
        self.task = meta.task
        if self.task not in (BINARY, MULTICLASS, REGRESSION):
            raise _refuse(f"its task is {self.task!r}")
        self.preprocess = Preprocess(predictor.preprocessor.state)
        self.model = predictor.model.eval()
        self.n_numeric, self.n_categorical = len(self.preprocess.numeric), len(self.preprocess.categorical)
        self.calibrate = Calibrate(meta.calibration) if self.task == BINARY and meta.calibration else None
        if self.task == BINARY:
            classes = list(meta.data["classes"])
            self.positive_first = classes.index(meta.data["positive_class"]) == 0
        if self.task == REGRESSION:
            self.y_mean, self.y_std = float(meta.data["y_mean"]), float(meta.data["y_std"])

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        x_num = self.preprocess(numeric)
        logits = self.model(x_num, codes).float()
        scores = outputs_to_scores(logits, self.task)
        if self.task == REGRESSION:
            return scores.to(torch.float64) * self.y_std + self.y_mean
        if self.task == MULTICLASS:
            return scores
        p = self.calibrate(scores) if self.calibrate is not None else scores.to(torch.float64)
        pair = [p, 1.0 - p] if self.positive_first else [1.0 - p, p]
        return torch.stack(pair, dim=1).to(torch.float32)
