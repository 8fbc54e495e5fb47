"""`automl report RUN_DIR`: write the run's `report.html` again, from the run directory alone (no retraining)."""

from __future__ import annotations

import argparse
import logging
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="automl report",
        description="Write RUN_DIR/report.html from the files of a finished run: the data, the chosen model and "
                    "its test metrics, the search (Optuna's plots), learning curves, calibration, feature "
                    "importance and the domain's own sections. One self-contained file that opens offline.")
    parser.add_argument("run_dir", help="the run directory of a finished run")
    parser.add_argument("--out", metavar="HTML", help="write the report here instead of RUN_DIR/report.html")
    parser.add_argument("--storage", metavar="URL",
                        help="the Optuna storage to read the study from, when the run used a database whose "
                             "password the run directory does not keep (search.storage)")
    args = parser.parse_args(argv)

    from automl.report import write_report

    # Sections that cannot be drawn are listed in the report and warned about here, one line each.
    logging.basicConfig(level=logging.WARNING, format="automl: %(message)s")
    started = time.perf_counter()
    path = write_report(args.run_dir, storage=args.storage, out=args.out)
    print(f"wrote {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
