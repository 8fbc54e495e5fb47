"""`automl export RUN_DIR --format onnx|torchscript`: the run's predictor as one graph, checked against it."""

from __future__ import annotations

import argparse
import sys


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MB"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="automl export",
        description="Export a run's predictor (preprocessing, network or ensemble, calibration) as one ONNX or "
                    "TorchScript file, then check it against the predictor on the run's test rows.")
    parser.add_argument("run_dir", help="the run directory")
    parser.add_argument("--format", dest="fmt", choices=("onnx", "torchscript"), default="onnx",
                        help="onnx (default: scored by onnxruntime, no torch needed) or torchscript")
    parser.add_argument("--out", help="folder for the files (default: RUN_DIR/export, where automl serve looks)")
    parser.add_argument("--quantize", choices=("int8",),
                        help="also write a dynamically quantised int8 ONNX file, refused when it moves the run's "
                             "objective on the test rows by more than 0.005 (regression: 0.5%%)")
    parser.add_argument("--rows", metavar="FILE",
                        help="rows to check the export on (CSV or Parquet), for a run whose test rows cannot be "
                             "re-derived (fitted on a DataFrame)")
    args = parser.parse_args(argv)

    from automl.card import write_model_card
    from automl.export.bundle import EXPORT_DIR, RECORD, TOLERANCE, export_run
    result = export_run(args.run_dir, args.fmt, out=args.out, quantize=args.quantize, rows_file=args.rows)
    rec = result.record
    print(f"exported {args.run_dir} as {args.fmt} ({rec['exporter']}"
          + (f", opset {rec['opset']}" if "opset" in rec else "") + f"): {result.path} ({_size(rec['bytes'])})")
    units = rec["parity"]["units"]
    print(f"parity on {result.source}: maximum absolute difference {result.max_abs_diff:.3g} {units} "
          f"(limit {TOLERANCE:g})")
    q = result.quantized
    if q is not None:
        print(f"int8: {q.file} ({_size(q.bytes)}, float {_size(q.float_bytes)}); one row p50 "
              f"{q.latency_int8.p50_ms:.3f} ms (float {q.latency_float.p50_ms:.3f} ms); "
              f"{q.latency_int8.rows_per_s:,.0f} rows/s (float {q.latency_float.rows_per_s:,.0f}); {q.metric} on the "
              f"test rows {q.float_value:.4f} -> {q.int8_value:.4f} ({q.change:+.4f}; bound {q.bound_text})")
    directory = result.path.parent
    print(f"wrote {directory / RECORD} and {directory / 'inputs.json'}", file=sys.stderr)
    if not args.out or _path(args.out).resolve() == (_path(args.run_dir) / EXPORT_DIR).resolve():
        write_model_card(_path(args.run_dir))  # the card lists the run's exports
    return 0


def _path(value: str):  # noqa: ANN202 - a Path
    from pathlib import Path

    return Path(value).expanduser()
