"""The search on a GPU: device utilisation and memory sampled during a search, trials per minute single
against batched.

    .venv/bin/python benchmarks/gpu.py            # needs a CUDA GPU (nvidia-smi); about 3 minutes
    .venv/bin/python benchmarks/gpu.py --trials 100 --epochs 20

The same search twice on ISLR Default (10,000 rows) as a CSV, the MLP and TabM families: `search.batch=1`
(one trial at a time) and `search.batch=auto` (after 16 trials one at a time, 32 trials asked at once on a
GPU, those sharing a structure trained as one stacked model, places freed early refilled), `trainer.accelerator=cuda` (bf16 autocast where the GPU has it). nvidia-smi is
sampled every 0.2 s for utilisation and memory; the study gives trials per minute. Prints a table and writes
benchmarks/results/gpu.json and gpu.md (the machine, the GPU, the versions). On a machine without a GPU it
says so and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from speed import BIN, datasets, machine, run, study_figures  # noqa: E402 - the speed benchmark's helpers


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def sampled(cmd: list[str], cwd: Path) -> tuple[float, list[tuple[float, float]]]:
    """Run `cmd`, sampling (utilisation %, memory MiB) of GPU 0 every 0.2 s."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                util, mem = (float(v) for v in out.stdout.strip().split(","))
                samples.append((util, mem))
            stop.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        wall, _ = run(cmd, cwd)
    finally:
        stop.set()
        thread.join()
    return wall, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu.json")
    args = parser.parse_args()
    name = gpu_name()
    if name is None:
        print("no GPU on this machine (nvidia-smi not found): nothing measured")
        return 0
    work = Path(tempfile.mkdtemp(prefix="automl-gpu-"))
    started = time.perf_counter()
    try:
        csv = datasets(work)["default"]["path"]
        base = [str(BIN / "automl"), "domain=tabular", f"data.path={csv}", "data.target=default",
                "data.positive_class=Yes", "search.families=[mlp,tabm]", f"search.n_trials={args.trials}",
                f"trainer.max_epochs={args.epochs}", "trainer.accelerator=cuda"]
        result = {"machine": machine(), "gpu": name, "trials": args.trials, "epochs": args.epochs, "runs": {}}
        for label, batch in (("one trial at a time (search.batch=1)", "1"), ("batched (search.batch=auto)", "auto")):
            run_dir = work / f"gpu_{batch}"
            wall, samples = sampled([*base, f"search.batch={batch}", f"run_dir={run_dir}"], work)
            figures = study_figures(run_dir)
            util = [u for u, _ in samples]
            mem = [m for _, m in samples]
            result["runs"][label] = {"wall_s": wall, **figures, "samples": len(samples),
                                     "utilisation_mean": statistics.mean(util) if util else None,
                                     "utilisation_max": max(util, default=None),
                                     "memory_mib_max": max(mem, default=None),
                                     "memory_mib_last": mem[-1] if mem else None}
            print(f"  {label}: {figures['trials_per_min']:.0f} trials/min, GPU utilisation mean "
                  f"{result['runs'][label]['utilisation_mean']:.0f}%, memory max {max(mem, default=0):.0f} MiB",
                  flush=True)
        result["seconds"] = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, many = result["runs"].values()
    lines = [f"## GPU: the search on {name}", "",
             f"Command: `.venv/bin/python benchmarks/gpu.py --trials {args.trials} --epochs {args.epochs}` "
             f"({result['seconds']:.0f} s). ISLR Default as a CSV, mlp and tabm, trainer.accelerator=cuda.", "",
             "| mode | wall s | trials/min | GPU utilisation mean / max | GPU memory max MiB | test ROC AUC |",
             "|---|---:|---:|---|---:|---:|"]
    for label, r in result["runs"].items():
        lines.append(f"| {label} | {r['wall_s']:.1f} | {r['trials_per_min']:.0f} | {r['utilisation_mean']:.0f}% / "
                     f"{r['utilisation_max']:.0f}% | {r['memory_mib_max']:.0f} | {r['test_roc_auc']:.4f} |")
    lines += ["", f"Batched: {many['trials_per_min'] / one['trials_per_min']:.2f}x the trials per minute."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
