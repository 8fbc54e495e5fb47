"""int8: a dynamically quantised copy of an ONNX export, and what it costs in quality.

`onnxruntime.quantization.quantize_dynamic` stores MatMul / Gemm weights as int8 and quantises activations
on the fly; nothing needs calibration data. Smaller and sometimes faster, but not the same model: the
domain's main metric (the run's objective) is recomputed on the same rows for both files, and an int8 file
whose metric moves by more than `METRIC_BOUND` is refused: 0.005 absolute for classification metrics
(probabilities, rates, areas: log loss, ROC AUC, Brier...), 0.5% of the float file's value for regression
metrics, which are in the target's units (an RMSE of 36,000 dollars).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: Largest change of the objective an int8 export may cost: absolute for classification, relative (a share of
#: the float value) for regression.
METRIC_BOUND = 0.005
METHOD = "onnxruntime.quantization.quantize_dynamic(weight_type=QInt8)"


def quantize_int8(float_model: Path, out: Path) -> None:
    """onnxruntime's recommended two steps: shape inference and graph optimisation, then dynamic quantisation."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_model), str(prepared))
        quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8)


@dataclass
class Latency:
    """One-row latency (median and 99th percentile of single calls) and batch throughput."""

    p50_ms: float
    p99_ms: float
    rows_per_s: float


def latency(score: Callable[[Mapping[str, Any]], Any], columns: Mapping[str, "np.ndarray"], calls: int = 200,
            batch: int = 1000, budget_s: float = 1.0) -> Latency:
    """Time `score` on one row `calls` times (within `budget_s`) and on `batch` rows (tiled from `columns`,
    checked rows as `check_rows(...).arrays`)."""
    import numpy as np

    one = {k: v[:1] for k, v in columns.items()}
    score(one)  # warm-up: the first run allocates
    times, start = [], time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        score(one)
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    big = {k: np.resize(v, batch) for k, v in columns.items()}
    score(big)
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        score(big)
        runs.append(time.perf_counter() - t)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return Latency(p50_ms=1e3 * statistics.median(times), p99_ms=1e3 * p99, rows_per_s=batch / statistics.median(runs))


@dataclass
class QuantizedReport:
    file: str
    bytes: int
    float_bytes: int
    metric: str
    float_value: float
    int8_value: float
    change: float
    bound: float
    #: Largest difference of the int8 file's outputs from the float file's, on the same rows.
    max_abs_diff_vs_float: float
    latency_int8: Latency
    latency_float: Latency
    #: True: `bound` is a share of the float value (regression metrics, in target units).
    relative: bool = False
    method: str = METHOD

    @property
    def within_bound(self) -> bool:
        limit = self.bound * abs(self.float_value) if self.relative else self.bound
        return abs(self.change) <= limit

    @property
    def bound_text(self) -> str:
        return f"{100 * self.bound:g}% of the float value" if self.relative else f"{self.bound:g} absolute"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare(metric: Any, y: "np.ndarray", float_scores: "np.ndarray", int8_scores: "np.ndarray") -> tuple[float, float]:
    """The metric (`MetricSpec.fn(y_true, y_score)`) of both files' scores on the same rows."""
    return float(metric.fn(y, float_scores)), float(metric.fn(y, int8_scores))
