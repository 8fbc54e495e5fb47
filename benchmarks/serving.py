"""How fast a run's model answers once it is served: one row, and 1,000-row batches; ONNX against torch.

    .venv/bin/python benchmarks/serving.py                    # about 2 minutes on 2 cores, CPU only
    .venv/bin/python benchmarks/serving.py --run-dir runs/x   # an existing tabular run instead of a new one
    .venv/bin/python benchmarks/serving.py --quick            # fewer calls

Without --run-dir it first runs `automl dataset=churn search.n_trials=4 search.n_workers=0` and exports it
(`automl export RUN --format onnx`). The rows are the run's own test rows (raw, as a client sends them).

(a) In process, on the same rows: the torch predictor (`automl.load(run).predict_proba`, its validation
    included); the ONNX export through the same validation (`check_rows`, then onnxruntime); and the ONNX graph
    alone (`InferenceSession.run` on ready arrays), to show what validation and pandas cost.
(b) Over HTTP: `automl serve RUN --backend torch` and `--backend onnx` (uvicorn, one worker, access log off),
    called by one keep-alive httpx client: POST /predict with one row, sequentially; and with 1,000 rows.

Latency is the median (p50) and 99th percentile (p99) of single calls; throughput is rows per second for
1,000-row batches (median of repeated calls). Prints a table and writes benchmarks/results/serving.json (every
figure, the machine, the versions) and benchmarks/results/serving.md (the section for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from machine import describe  # benchmarks/machine.py: this script's folder is first on sys.path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
AUTOML = str(Path(sys.executable).with_name("automl"))
LIBRARIES = ("vertical-automl", "torch", "onnx", "onnxruntime", "onnxscript", "fastapi", "uvicorn", "httpx",
             "pydantic", "numpy", "pandas")


def machine() -> dict[str, Any]:
    return describe(LIBRARIES)


def timed(fn: Callable[[], Any], calls: int, budget_s: float) -> dict[str, float]:
    """p50 / p99 milliseconds of `calls` single calls (fewer if the budget runs out), after one warm-up."""
    fn()
    times, start = [], time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return {"p50_ms": 1e3 * statistics.median(times), "p99_ms": 1e3 * p99, "calls": len(times)}


def throughput(fn: Callable[[], Any], rows: int, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return rows / statistics.median(runs)


def prepare(run_dir: Path | None, work: Path) -> tuple[Path, dict[str, Any]]:
    """The run to serve, exported to ONNX; what the export reported."""
    if run_dir is None:
        run_dir = work / "churn"
        subprocess.run([AUTOML, "dataset=churn", "search.n_trials=4", "search.n_workers=0", f"run_dir={run_dir}"],
                       check=True, capture_output=True, text=True, cwd=work)
    proc = subprocess.run([AUTOML, "export", str(run_dir), "--format", "onnx"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"automl export failed: {proc.stderr.strip()}")
    record = json.loads((run_dir / "export" / "export.json").read_text())["exports"]["onnx"]
    return run_dir, record


def in_process(run_dir: Path, rows: Any, calls: int, budget_s: float, repeats: int) -> list[dict[str, Any]]:
    import automl
    from automl.export.bundle import find_onnx_export
    from automl.export.runtime import OnnxScorer
    from automl.validation import STRICT, check_rows

    predictor = automl.load(run_dir)
    (model, signature), _ = find_onnx_export(run_dir)
    scorer = OnnxScorer(model, signature)
    schema = predictor.schema()
    one, batch = rows.iloc[:1], rows.iloc[:1000]
    feeds_one = signature.onnx_feeds(check_rows(one, schema, STRICT).arrays)
    feeds_batch = signature.onnx_feeds(check_rows(batch, schema, STRICT).arrays)

    def onnx(frame: Any) -> Any:
        return scorer.outputs(check_rows(frame, schema, STRICT).arrays)

    cases = [
        ("in process", "torch: predict_proba", lambda: predictor.predict_proba(one),
         lambda: predictor.predict_proba(batch)),
        ("in process", "onnx: check_rows + onnxruntime", lambda: onnx(one), lambda: onnx(batch)),
        ("in process", "onnx graph alone (session.run)", lambda: scorer.session.run(None, feeds_one),
         lambda: scorer.session.run(None, feeds_batch)),
    ]
    out = []
    for where, what, single, many in cases:
        out.append({"where": where, "what": what, **timed(single, calls, budget_s),
                    "rows_per_s": throughput(many, len(batch), repeats), "batch_rows": len(batch)})
        print(f"  {what}: p50 {out[-1]['p50_ms']:.2f} ms, {out[-1]['rows_per_s']:,.0f} rows/s", flush=True)
    return out


def over_http(run_dir: Path, rows: Any, calls: int, budget_s: float, repeats: int, work: Path) -> list[dict[str, Any]]:
    import httpx

    from automl.serve.process import served

    body_one = {"rows": json.loads(rows.iloc[:1].to_json(orient="records"))}
    body_batch = {"rows": json.loads(rows.iloc[:1000].to_json(orient="records"))}
    out = []
    for backend in ("torch", "onnx"):
        args = ["--backend", backend, "--log-level", "warning", "--max-body-bytes", str(64 << 20)]
        with served(run_dir, args=args, log=work / f"serve-{backend}.log") as base, httpx.Client(timeout=120) as client:
            def post(body: dict) -> None:
                response = client.post(f"{base}/predict", json=body)
                response.raise_for_status()

            assert client.get(f"{base}/health").json()["backend"] == backend
            out.append({"where": "over HTTP", "what": f"automl serve --backend {backend}",
                        **timed(lambda: post(body_one), calls, budget_s),
                        "rows_per_s": throughput(lambda: post(body_batch), len(body_batch["rows"]), repeats),
                        "batch_rows": len(body_batch["rows"])})
        print(f"  HTTP {backend}: p50 {out[-1]['p50_ms']:.2f} ms, {out[-1]['rows_per_s']:,.0f} rows/s", flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    m, run = result["machine"], result["run"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        "## Serving: one row and 1,000-row batches, ONNX against torch",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; {versions}. "
        f"Command: `{result['command']}` ({result['seconds']:.0f} s; load average {result['load_at_start']:.1f} at "
        f"the start, {result['load_at_end']:.1f} at the end: other work shared the cores, so single figures move "
        "by tens of percent between runs).",
        "",
        f"Model: {run['family']} ({run.get('members', 1)} member(s)); rows: {run['source']}, raw, as clients send "
        f"them. ONNX export {run['onnx_kb']:.0f} KB, its largest difference from `predict_proba` on those rows "
        f"{run['max_abs_diff']:.2g}.",
        "",
        "| where | what scores | one row p50 ms | one row p99 ms | rows/s, 1,000-row batches |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["figures"]:
        lines.append(f"| {r['where']} | {r['what']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rows_per_s']:,.0f} |")
    fig = {r["what"]: r for r in result["figures"]}
    torch_one = fig["torch: predict_proba"]["p50_ms"]
    onnx_one = fig["onnx: check_rows + onnxruntime"]["p50_ms"]
    graph_one = fig["onnx graph alone (session.run)"]["p50_ms"]
    lines += [
        "",
        f"In process, one row costs {torch_one:.2f} ms through torch and {onnx_one:.2f} ms through the ONNX export, "
        f"of which the ONNX graph itself is {graph_one:.3f} ms: the rest is Python around the model, the validation "
        "layer and the input arrays on the ONNX path, the predictor's pandas preprocessing and torch's dispatch on "
        "the torch path. Over HTTP, FastAPI, pydantic and JSON add their share; the service scores with the ONNX "
        "export whenever the run has a current one (`/health` says which).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, help="an existing tabular run (default: a new churn search)")
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where serving.json and serving.md go")
    args = parser.parse_args()
    calls, budget, repeats = (50, 2.0, 3) if args.quick else (500, 10.0, 7)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("preparing the run and its ONNX export ...", flush=True)
        run_dir, record = prepare(args.run_dir, work)
        from automl.export.rows import rows_for
        from automl.predictor import load

        predictor = load(run_dir)
        test = rows_for(run_dir, predictor.schema())
        rows = test.frame
        while len(rows) < 1000:  # a small test split is tiled to a full batch
            import pandas as pd

            rows = pd.concat([rows, test.frame], ignore_index=True)
        print("in process:", flush=True)
        figures = in_process(run_dir, rows, calls, budget, repeats)
        print("over HTTP:", flush=True)
        figures += over_http(run_dir, rows, calls, budget, repeats, work)
        run = {"family": predictor.meta.lead.family, "members": len(predictor.meta.members),
               "source": test.source, "rows": len(test.frame),
               "onnx_kb": record["bytes"] / 1024, "max_abs_diff": record["parity"]["max_abs_diff"],
               "run_dir": str(args.run_dir) if args.run_dir else "(temporary churn run)"}
    command = "python benchmarks/serving.py" + (" --quick" if args.quick else "") + \
        (f" --run-dir {args.run_dir}" if args.run_dir else "")
    result = {"machine": machine(), "command": command, "seconds": time.perf_counter() - started,
              "load_at_start": load_start, "load_at_end": os.getloadavg()[0], "run": run, "figures": figures,
              "settings": {"calls": calls, "budget_s": budget, "repeats": repeats, "batch_rows": 1000}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "serving.md").write_text(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
