"""The rows an export is checked on: the run's own test rows, re-derived without retraining.

A predictor stores no rows. The run's composed config (`RUN_DIR/.hydra/config.yaml`) names the data and the
seed, so resolving the same source and preparing it again (the seeded split is deterministic) gives the same
test rows: `prepared.test` indexes the checked table's feature columns. A run fitted on a DataFrame through
the SDK has no such config (and `run.json` says its source was "dataframe"): then the rows come from a file
(`--rows FILE`), and the caller says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError, DataError
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from automl.validation import InputSchema


CONFIG = Path(".hydra") / "config.yaml"


@dataclass
class CheckRows:
    """Raw feature rows, their true targets where known (in the metrics' form), and where they came from."""

    frame: "pd.DataFrame"
    y: Optional["np.ndarray"]
    source: str


def rows_for(run_dir: Path, schema: "InputSchema", rows_file: Optional[str] = None) -> CheckRows:
    """`rows_file`'s rows when given, else the run's test rows; a one-line error when neither can be had."""
    if rows_file:
        return _from_file(Path(rows_file), schema)
    why = underivable(run_dir)
    if why:
        raise DataError(f"cannot re-derive the test rows of {run_dir} ({why}): pass --rows FILE (CSV or Parquet "
                        "with the model's columns, and its target column for the int8 metric check)")
    return _test_rows(run_dir)


def underivable(run_dir: Path) -> Optional[str]:
    """Why the run's test rows cannot be re-derived, or None when they can."""
    summary = run_dir / "run.json"
    if summary.exists():
        try:
            if json.loads(summary.read_text()).get("data", {}).get("source") == "dataframe":
                return "it was fitted on a DataFrame given to the SDK"
        except ValueError:
            pass
    if not (run_dir / CONFIG).exists():
        return f"it has no {CONFIG}: it was not run from the command line"
    return None


def _test_rows(run_dir: Path) -> CheckRows:
    from automl.config import RunConfig
    from automl.data.checks import check_table
    from automl.host import PluginHost
    from automl.plan import resolve, resolve_source

    cfg = RunConfig.of_run(run_dir)
    host = PluginHost.installed()
    resolution = resolve(cfg, host)
    try:
        table = resolve_source(cfg, host, resolution.domain)
        prepared = resolution.pipeline.prepare(table, cfg)
    except AutoMLError as exc:
        raise DataError(f"cannot re-derive the test rows of {run_dir} ({exc}): pass --rows FILE") from None
    # The same checks `prepare` ran: `prepared.test` indexes these rows (missing targets dropped, features only).
    features = check_table(table).features
    y = prepared.arrays["y_raw"][prepared.test]
    y = y if prepared.info.task == REGRESSION else y.astype(int)
    source = f"the run's {len(prepared.test)} test rows (re-derived from {CONFIG}: {table.name}, seed {cfg.seed})"
    return CheckRows(frame=features.iloc[prepared.test].reset_index(drop=True), y=y, source=source)


def _from_file(path: Path, schema: "InputSchema") -> CheckRows:
    """A file's rows; its target column, when present, gives the true targets."""
    from automl.data.sources import read_file

    frame = read_file(str(path))
    y = targets(frame[schema.target], schema) if schema.target in frame.columns else None
    return CheckRows(frame=frame, y=y, source=f"{len(frame)} rows of {path.name} (--rows)")


def targets(values: "pd.Series", schema: "InputSchema") -> Optional["np.ndarray"]:
    """A target column in the form the metrics take (binary 0/1, class indices, numbers); None when some value
    is not one of the model's classes."""
    import numpy as np

    if schema.task == REGRESSION:
        return values.to_numpy(dtype=np.float64)
    classes = [str(c) for c in schema.classes]
    text = values.astype(str)
    if not text.isin(classes).all():
        return None
    if schema.task == BINARY:
        return (text == str(schema.positive_class)).to_numpy(dtype=int)
    if schema.task == MULTICLASS:
        return text.map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=int)
    return None  # pragma: no cover


def describe(rows: CheckRows) -> dict[str, Any]:
    return {"rows": len(rows.frame), "source": rows.source}
