"""Files of the run directory that describe the search: the leaderboard, the test metrics, the run.

- `leaderboard.csv`: one row per trial: number, state, value, duration, its weight in the final model
  (`ensemble_weight`: 0 for trials the final model does not use), then every `TrialRecord` field that any trial
  recorded (family, epochs, best epoch, timings, fold scores, why it failed or stopped), then every parameter
  as `param.<name>`.
- `metrics.json`: the `FinalReport` (format 2): `test` and `validation` hold metric values only (null where
  undefined), `ci95` the 95% intervals a domain computes, `details` its structured results, `model` what was
  evaluated (its members and weights), `ensemble` (members, weights, the held-out objective beside the best
  trial's) and `best_single` (the best trial alone on the same test rows) when the final model is an ensemble,
  `refit` (the members trained again on all development rows, and the searched members' test figures), plus
  `n_test` and `validation_rows`.
- `run.json`: the `RunSummary`: what the data was (source, rows, features, classes, every column left out and
  why, the split, the validation scheme), the search (objective, families, budget, trials), the wall time and
  the versions of automl, its plugins and the main libraries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.records import FinalReport, RunSummary, TrialRecord

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.host import PluginHost

LEADERBOARD, METRICS, RUN = "leaderboard.csv", "metrics.json", "run.json"
#: Libraries whose versions a run records (model card, report).
LIBRARIES = ("torch", "lightning", "optuna", "scikit-learn", "numpy", "pandas", "transformers", "safetensors",
             "hydra-core")
#: Record fields the leaderboard leaves out: they are in the parameter columns already.
_NOT_SHOWN = ("params", "hp", "run", "constraint_violations", "measured")


def leaderboard_frame(trials: list[Any], weights: dict[int, float] | None = None,
                      objectives: list[str] | None = None, front: list[int] | None = None) -> "pd.DataFrame":
    """One row per trial: number, state, value (in a multi-objective study one `value_<objective>` column each
    and `pareto`: on the front), duration, its weight in the final model, what its record holds (whether it met
    the constraints, `feasible`, and the values measured, `measured.<name>`), then every parameter."""
    import pandas as pd

    rows = []
    for t in trials:
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        record = TrialRecord.of(t)
        values = t.values or []
        row: dict[str, Any] = {"number": t.number, "state": t.state.name.lower(),
                               "value": values[0] if values else None}
        if objectives:
            row.update({f"value_{name}": (values[i] if i < len(values) else None)
                        for i, name in enumerate(objectives)})
            row["pareto"] = t.number in (front or [])
        row.update({"duration_s": round(duration, 3) if duration is not None else None,
                    "ensemble_weight": (weights or {}).get(t.number, 0.0)})
        row.update({f"measured.{k}": v for k, v in (record.measured or {}).items()})
        for name in TrialRecord.names():
            if name not in _NOT_SHOWN:
                value = getattr(record, name)
                row[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        row.update({f"param.{k}": v for k, v in sorted(t.params.items())})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.dropna(axis=1, how="all")
        integer_like = [c for c in frame.columns if c.startswith("param.") or c in TrialRecord.integer_names()]
        for col in integer_like:  # an int parameter absent in some trials must not turn into 3.0
            values = frame[col].dropna()
            if len(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
                                   for v in values) and frame[col].dtype == float:
                frame[col] = frame[col].astype("Int64")
    return frame


def write_leaderboard(trials: list[Any], run_dir: Path, weights: dict[int, float] | None = None,
                      objectives: list[str] | None = None, front: list[int] | None = None) -> "pd.DataFrame":
    frame = leaderboard_frame(trials, weights, objectives, front)
    frame.to_csv(run_dir / LEADERBOARD, index=False)
    return frame


def write_metrics(run_dir: Path, report: FinalReport) -> None:
    (run_dir / METRICS).write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")


def write_run_summary(run_dir: Path, summary: RunSummary) -> None:
    (run_dir / RUN).write_text(json.dumps(summary.to_json(), indent=2, default=str) + "\n")


def versions(host: "PluginHost") -> dict[str, str | None]:
    """automl's version, each loaded plugin's (by its distribution, or the plugin name), the main libraries'."""
    import importlib.metadata

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    out = {"vertical-automl": version("vertical-automl")}
    for name, info in host.infos.items():
        if info.loaded and name != "builtin":
            out[info.distribution or f"plugin {name}"] = info.version
    out.update({lib: version(lib) for lib in LIBRARIES})
    return out
