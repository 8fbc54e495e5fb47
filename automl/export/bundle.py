"""The export folder of a run: the model file, `inputs.json`, `export.json`, each export checked before it stays.

```
RUN_DIR/export/
  model.onnx             the whole predictor, raw columns in (automl.export.onnx)
  model.int8.onnx        --quantize int8 (automl.export.quantize)
  model.torchscript.pt   --format torchscript (automl.export.torchscript)
  inputs.json            columns, categories, classes, threshold; the TorchScript category codes
  export.json            per format: file, SHA-256, exporter, opset, versions, parity, int8 report, and the
                         digest of the predictor it was made from (the service ignores a stale export)
```

`export_run` loads the run's predictor, exports it, scores rows with the export (onnxruntime for ONNX,
no torch on that side) and with `predict_proba`, and keeps the file only when the largest difference is
within `TOLERANCE`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.card import predictor_digest
from automl.errors import AutoMLError
from automl.export.signature import Signature
from automl.integrity import sha256
from automl.tasks import REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    from automl.export.rows import CheckRows


EXPORT_DIR, RECORD = "export", "export.json"
FORMATS = ("onnx", "torchscript")
FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
INT8_FILE = "model.int8.onnx"
#: Largest absolute difference from `predict_proba` an export may show (regression: in target standard
#: deviations, the network's own units; a price of 180,000 differs by float32 rounding alone).
TOLERANCE = 1e-4
RECORD_FORMAT = 1


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    rows: int
    source: str
    record: dict[str, Any]
    quantized: Optional[Any] = None
    notes: list[str] = field(default_factory=list)


def export_run(run_dir: str | Path, fmt: str, out: Optional[str | Path] = None, quantize: Optional[str] = None,
               rows_file: Optional[str] = None) -> ExportResult:
    """Export the run's predictor as `fmt`, check it on the run's test rows (or `rows_file`'s), record it."""
    from automl.export.rows import rows_for
    from automl.predictor import load
    from automl.tabular.predictor import TabularPredictor

    run_dir = Path(run_dir).expanduser()
    if fmt not in FORMATS:
        raise AutoMLError(f"--format {fmt!r} is not supported: use {' or '.join(FORMATS)}")
    if quantize not in (None, "int8"):
        raise AutoMLError(f"--quantize {quantize!r} is not supported: use int8")
    if quantize and fmt != "onnx":
        raise AutoMLError("--quantize int8 applies to ONNX exports: add --format onnx")
    predictor = load(run_dir)
    if not isinstance(predictor, TabularPredictor):
        domain = getattr(getattr(predictor, "meta", None), "domain", "saved")
        raise AutoMLError(f"the {domain} predictor in {run_dir} ({type(predictor).__name__}) cannot be "
                          "exported: only tabular predictors can; serve it with automl serve RUN_DIR")
    schema = predictor.schema()
    if schema.text:
        # One graph takes raw columns in; tokenizing text inside it needs onnxruntime-extensions' custom ops,
        # which plain onnxruntime clients do not have. The torch predictor serves these models.
        raise AutoMLError(f"the model in {run_dir} reads text column(s) {', '.join(schema.text)} through a "
                          f"pre-trained encoder, which automl does not export (its tokenizer has no ONNX or "
                          f"TorchScript form here): serve it with torch: automl serve {run_dir}")
    rows = rows_for(run_dir, schema, rows_file)  # before exporting: a run whose rows cannot be had fails fast
    directory = Path(out).expanduser() if out else run_dir / EXPORT_DIR
    path = directory / FILES[fmt]
    started = time.perf_counter()
    if fmt == "onnx":
        from automl.export.onnx import EXPORTER, ML_OPSET, OPSET, export_onnx, onnx_versions
        from automl.export.runtime import OnnxScorer

        (directory / INT8_FILE).unlink(missing_ok=True)  # an int8 copy of the previous export is stale now
        signature = export_onnx(predictor, path)
        scorer: Any = OnnxScorer(path, signature)
        details = {"exporter": EXPORTER, "opset": OPSET, "ml_opset": ML_OPSET, "versions": onnx_versions()}
    else:
        from automl.export.torchscript import EXPORTER, TorchScriptScorer, export_torchscript

        signature = export_torchscript(predictor, path)
        scorer = TorchScriptScorer(path, signature)
        details = {"exporter": EXPORTER, "versions": {"torch": _version("torch")}}
    signature.write(directory)
    export_s = time.perf_counter() - started

    diff, checked = parity(predictor, scorer, rows)
    if not diff <= TOLERANCE:  # NaN fails too
        path.unlink(missing_ok=True)
        raise AutoMLError(f"the {fmt} export differs from predict_proba by up to {diff:.3g} on {len(rows.frame)} rows "
                          f"(limit {TOLERANCE:g}), so it was removed: score with automl.load(run_dir) and report "
                          "this predictor's family")
    record = {
        "file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path), **details,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "export_s": round(export_s, 2),
        "predictor": {"run_dir": str(run_dir), "digest": predictor_digest(run_dir / "predictor")},
        "parity": {"rows": len(rows.frame), "source": rows.source, "max_abs_diff": diff, "tolerance": TOLERANCE,
                   "units": "target standard deviations" if schema.task == REGRESSION else "probability",
                   "compared_with": "automl.load(run_dir).predict" + ("" if schema.task == REGRESSION else "_proba")},
        "inputs": "inputs.json",
    }
    result = ExportResult(path=path, format=fmt, max_abs_diff=diff, rows=len(rows.frame), source=rows.source,
                          record=record)
    _write_record(directory, fmt, record)  # the float export stands, whatever int8 turns out to cost
    if quantize:
        result.quantized = _quantize(predictor, scorer, signature, rows, checked, directory)
        record["quantized"] = result.quantized.to_json()
        _write_record(directory, fmt, record)
    return result


def parity(predictor: Any, scorer: Any, rows: "CheckRows") -> tuple[float, Any]:
    """Largest absolute difference between the export's outputs and the predictor's, on the same checked rows
    (rows whose values cannot be used as given are imputed the same way on both sides)."""
    import numpy as np

    from automl.validation import COERCE, check_rows

    checked = check_rows(rows.frame, predictor.schema(), COERCE)
    exported = np.asarray(scorer.outputs(checked.arrays), dtype=np.float64)
    if predictor.task == REGRESSION:
        reference = predictor.predict(checked.frame, policy=COERCE).to_numpy(dtype=np.float64)
        scale = float(predictor.meta.data.get("y_std") or 1.0)
    else:
        reference = predictor.predict_proba(checked.frame, policy=COERCE).to_numpy(dtype=np.float64)
        scale = 1.0
    if exported.shape != reference.shape:
        return float("inf"), checked
    both = np.isfinite(reference) & np.isfinite(exported)
    if not (both == (np.isfinite(reference) | np.isfinite(exported))).all():
        return float("inf"), checked  # one side finite where the other is not
    return float(np.max(np.abs(exported[both] - reference[both]), initial=0.0) / scale), checked


def _quantize(predictor: Any, scorer: Any, signature: Signature, rows: "CheckRows", checked: Any,
              directory: Path) -> Any:
    import numpy as np

    from automl.export.quantize import METRIC_BOUND, QuantizedReport, compare, latency, quantize_int8
    from automl.export.runtime import OnnxScorer
    from automl.host import PluginHost

    if rows.y is None:
        raise AutoMLError(f"--quantize int8 needs the true targets to measure what int8 costs, and {rows.source} "
                          f"has no usable {signature.schema.target!r} column: pass --rows FILE with it")
    out = directory / INT8_FILE
    quantize_int8(scorer.path, out)
    int8 = OnnxScorer(out, signature)
    metric = PluginHost.installed().metrics.get(predictor.meta.objective)
    frame = checked.arrays
    float_scores, int8_scores = scorer.scores(frame), int8.scores(frame)
    float_value, int8_value = compare(metric, rows.y, float_scores, int8_scores)
    report = QuantizedReport(
        file=out.name, bytes=out.stat().st_size, float_bytes=scorer.path.stat().st_size, metric=metric.name,
        float_value=float_value, int8_value=int8_value, change=int8_value - float_value, bound=METRIC_BOUND,
        max_abs_diff_vs_float=float(np.max(np.abs(np.asarray(int8.outputs(frame), dtype=np.float64)
                                                  - np.asarray(scorer.outputs(frame), dtype=np.float64)),
                                           initial=0.0)),
        latency_int8=latency(int8.scores, frame), latency_float=latency(scorer.scores, frame),
        relative=signature.schema.task == REGRESSION,
    )
    if not report.within_bound:
        out.unlink(missing_ok=True)
        raise AutoMLError(f"int8 changes {metric.name} on {rows.source} from {float_value:.4f} to {int8_value:.4f} "
                          f"({report.change:+.4f}; bound {report.bound_text}), so it was removed: serve the float "
                          "export")
    return report


def _write_record(directory: Path, fmt: str, record: dict[str, Any]) -> None:
    path = directory / RECORD
    try:
        existing = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        existing = {}
    exports = existing.get("exports", {}) if existing.get("format") == RECORD_FORMAT else {}
    exports[fmt] = record
    path.write_text(json.dumps({"format": RECORD_FORMAT, "automl": _version("vertical-automl"), "exports": exports},
                               indent=2, default=str) + "\n")


def find_onnx_export(run_dir: Path) -> tuple[Optional[tuple[Path, Signature]], str]:
    """The run's checked ONNX export and its signature, if there is one made from the current predictor;
    else None and why (for the service's log)."""
    directory = Path(run_dir) / EXPORT_DIR
    path = directory / RECORD
    if not path.exists():
        return None, f"no ONNX export in {directory} (automl export RUN_DIR --format onnx makes one)"
    try:
        record = json.loads(path.read_text()).get("exports", {}).get("onnx")
    except ValueError:
        return None, f"{path} is not valid JSON"
    if not record or not (directory / record["file"]).exists():
        return None, f"no ONNX export in {directory}"
    if record.get("predictor", {}).get("digest") != predictor_digest(Path(run_dir) / "predictor"):
        return None, f"the ONNX export in {directory} was made from another predictor (export the run again)"
    return (directory / record["file"], Signature.read(directory)), f"ONNX export {directory / record['file']}"


def _version(dist: str) -> Optional[str]:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
