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
    parser.add_argument("--policy", choices=("strict", "coerce"), default="strict",
                        help="strict (default): refuse rows with a missing column, text in a numeric column or inf, "
                             "naming the column and rows; coerce: impute those values, score every row and add a "
                             "`warning` column (no label where the output is not finite)")
    parser.add_argument("--explain", nargs="?", const=3, type=int, metavar="N",
                        help="add each row's N (default 3) largest contributions by original column, by integrated "
                             "gradients: reason_1, contribution_1, ... (e.g. adverse-action reasons), and the "
                             "explained score")
    args = parser.parse_args(argv)

    from automl.data.sources import read_file
    from automl.predictor import load
    from automl.tabular.predictor import TabularPredictor

    rows = read_file(args.file)
    predictor = load(args.run_dir)
    if not hasattr(predictor, "predict"):
        raise AutoMLError(f"the predictor in {args.run_dir} does not score rows (it is a {type(predictor).__name__}); "
                          "load it in Python with automl.load(run_dir)")
    missing = [c for c in args.keep if c not in rows.columns]
    if missing:
        raise DataError(f"--keep {missing[0]}: no such column in {Path(args.file).name}")
    out = rows[args.keep].copy()
    if not isinstance(predictor, TabularPredictor):
        if args.policy != "strict":
            raise AutoMLError(f"--policy applies to tabular predictors, not to a {type(predictor).__name__}")
        out["prediction"] = predictor.predict(rows)
    elif predictor.task == "regression":
        values = predictor.predict(rows, policy=args.policy)
        out["prediction"] = values
        warnings = values.attrs.get("warnings")
    else:  # one scoring pass: labels by the predictor's own rule from the probabilities
        from automl.validation import decide_labels

        proba = predictor.predict_proba(rows, policy=args.policy)
        scores = proba[predictor.positive_class].to_numpy() if predictor.task == "binary" else proba.to_numpy()
        out["prediction"] = decide_labels(scores, predictor.schema())
        for col in proba.columns:
            out[f"probability_{col}"] = proba[col]
        warnings = proba.attrs.get("warnings")
    if args.explain is not None:
        if not isinstance(predictor, TabularPredictor) or args.explain < 1:
            raise AutoMLError("--explain N takes N >= 1 and a tabular predictor (per-column contributions)")
        explanation = predictor.explain(rows)
        out["explained_score"] = explanation.score
        out = out.join(explanation.top(args.explain))
        print(f"contributions explain {explanation.explained}, from a baseline of {explanation.baseline} (baseline "
              f"score {float(explanation.baseline_score.iloc[0]):.4f}); a positive contribution raised the score",
              file=sys.stderr)
    if args.policy == "coerce":
        out["warning"] = warnings
    if args.out:
        out.to_csv(args.out, index=False)
        print(f"wrote {len(out)} predictions to {args.out}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0
