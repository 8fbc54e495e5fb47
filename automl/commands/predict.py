"""`automl predict RUN_DIR FILE`: score new rows with a run's saved predictor, from the shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from automl.errors import AutoMLError, DataError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="automl predict",
        description="Score the rows of a CSV or Parquet file with the predictor saved in a run directory.")
    parser.add_argument("run_dir", help="the run directory (or its predictor/ folder)")
    parser.add_argument("file", help="rows to score: .csv, .tsv or .parquet; the target column may be absent")
    parser.add_argument("--out", help="where to write the predictions (.csv); default: standard output")
    parser.add_argument("--keep", action="append", default=[], metavar="COLUMN",
                        help="copy this input column into the output (e.g. an identifier); repeatable")
    args = parser.parse_args(argv)


    from automl.data.sources import read_file
    from automl.predictor import load

    rows = read_file(args.file)
    predictor = load(args.run_dir)
    if not hasattr(predictor, "predict"):
        raise AutoMLError(f"the predictor in {args.run_dir} does not score rows (it is a {type(predictor).__name__}); "
                          "load it in Python with automl.load(run_dir)")
    missing = [c for c in args.keep if c not in rows.columns]
    if missing:
        raise DataError(f"--keep {missing[0]}: no such column in {Path(args.file).name}")
    out = rows[args.keep].copy()
    out["prediction"] = predictor.predict(rows)
    if hasattr(predictor, "predict_proba") and predictor.task != "regression":
        proba = predictor.predict_proba(rows)
        for col in proba.columns:
            out[f"probability_{col}"] = proba[col]
    if args.out:
        out.to_csv(args.out, index=False)
        print(f"wrote {len(out)} predictions to {args.out}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0
