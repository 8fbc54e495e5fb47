"""Files of the run directory that describe the search: the leaderboard and the test metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

LEADERBOARD, METRICS = "leaderboard.csv", "metrics.json"


def leaderboard_frame(trials: list[Any]) -> "pd.DataFrame":
    """One row per trial: number, state, value, duration, family and outcome, then every parameter."""
    import pandas as pd

    rows = []
    for t in trials:
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        a = t.user_attrs
        row = {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "duration_s": round(duration, 3) if duration is not None else None,
            "family": a.get("family"),
            "epochs": a.get("epochs"),
            "best_epoch": a.get("best_epoch"),
            "cv_std": a.get("cv_std"),
            "cv_scores": json.dumps(a["cv_scores"]) if "cv_scores" in a else None,
            "fail_reason": a.get("fail_reason"),
        }
        row.update({f"param.{k}": v for k, v in sorted(t.params.items())})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.dropna(axis=1, how="all")
        integer_like = [c for c in frame.columns if c.startswith("param.") or c in ("epochs", "best_epoch")]
        for col in integer_like:  # an int parameter absent in some trials must not turn into 3.0
            values = frame[col].dropna()
            if len(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
                                   for v in values) and frame[col].dtype == float:
                frame[col] = frame[col].astype("Int64")
    return frame


def write_leaderboard(trials: list[Any], run_dir: Path) -> "pd.DataFrame":
    frame = leaderboard_frame(trials)
    frame.to_csv(run_dir / LEADERBOARD, index=False)
    return frame


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    (run_dir / METRICS).write_text(json.dumps(_finite(metrics), indent=2, default=str) + "\n")


def _finite(value: Any) -> Any:
    """JSON has no NaN: an undefined metric is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
