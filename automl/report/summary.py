"""The report's summary: the data, the chosen model, the test metrics, the run. Read from run.json,
metrics.json, predictor.json and leaderboard.csv; nothing is recomputed here."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from automl.report.page import facts_html
from automl.report.section import ReportSection

if TYPE_CHECKING:  # pragma: no cover
    from automl.report.run_view import RunView


def sections(run: "RunView") -> list[Any]:
    return [lambda: data_section(run), lambda: model_section(run), lambda: metrics_section(run),
            lambda: run_section(run)]


def data_section(run: "RunView") -> ReportSection:
    import pandas as pd

    summary = run.summary
    if summary is None:
        return ReportSection("Data", note=f"run.json cannot be read: {run.why_not('summary')}")
    d = summary.data
    features = sum(len(v) for v in d.features.values())
    kinds = ", ".join(f"{len(v)} {k}" for k, v in d.features.items() if v)
    html = facts_html([
        ("source", d.source), ("task", d.task), ("target", d.target),
        ("positive class", d.positive_class if d.positive_class is not None else None),
        ("rows", f"{d.rows:,}" + (f" ({d.dropped_rows:,} dropped: target missing)" if d.dropped_rows else "")),
        ("features", f"{features} ({kinds})" if features else None),
        ("split", ", ".join(f"{k} {v:,}" for k, v in d.split.items())),
        ("trials were scored by", d.validation),
        ("sensitive attributes", ", ".join(d.sensitive) or None),
        *[(k, v) for k, v in d.extra.items()],
    ])
    for kind, cols in d.features.items():
        if cols:
            html += facts_html([(f"{kind} columns", ", ".join(cols))])
    tables = []
    if d.classes:
        total = sum(d.classes.values()) or 1
        tables.append(pd.DataFrame({"class": list(d.classes), "rows": list(d.classes.values()),
                                    "share": [n / total for n in d.classes.values()]}))
    if d.dropped:
        tables.append(pd.DataFrame({"column left out": list(d.dropped), "why": list(d.dropped.values())}))
    return ReportSection("Data", note="What the model learned from, as the run prepared it (run.json).", html=html,
                         tables=tables)


def model_section(run: "RunView") -> ReportSection:
    import pandas as pd

    meta, report = run.meta, run.metrics
    if meta is None and report is None:
        return ReportSection("Chosen model", note=f"predictor.json cannot be read: {run.why_not('meta')}")
    html, tables = "", []
    if meta is not None:
        lead = meta.lead
        family = (report.model.get("family") if report is not None else None) or lead.family
        html = facts_html([
            ("family", family if family != "ensemble" else f"an ensemble of {len(meta.members)} trials"),
            ("objective", meta.objective),
            ("objective on validation", f"{meta.validation_value:.4f}" if meta.validation_value is not None else None),
            ("decision threshold", f"{meta.threshold:.4f}" if meta.threshold is not None else None),
            ("calibration", meta.calibration["method"] if meta.calibration else None),
            ("validated on", report.validation_rows if report is not None else None),
        ])
        tables.append(pd.DataFrame([
            {"trial": m.trial, "family": m.family, "weight": m.weight,
             "models": f"{m.folds} fold models averaged" if m.folds else "one network",
             "architecture": _plain(m.params), "training": _plain(m.hp)} for m in meta.members]))
    elif report is not None:
        html = facts_html([(k, v) for k, v in report.model.items() if not isinstance(v, (list, dict))])
    return ReportSection("Chosen model", note="The final model: its family, architecture and training "
                         "hyperparameters (predictor.json, metrics.json `model`).", html=html, tables=tables)


def metrics_section(run: "RunView") -> ReportSection:
    import pandas as pd

    report = run.metrics
    if report is None:
        return ReportSection("Test metrics", note=f"metrics.json cannot be read: {run.why_not('metrics')}")
    rows = []
    for name, value in report.test.items():
        ci = report.ci95.get(name)
        rows.append({"metric": name, "test": value,
                     "95% interval": f"{ci[0]:.4g} to {ci[1]:.4g}" if ci and None not in ci else "",
                     "validation": report.validation.get(name)})
    note = (f"The final model measured once on the {report.n_test:,} untouched test rows; intervals where the "
            f"domain computes them; validation: {report.validation_rows}.")
    method = report.details.get("ci95_method")
    if method:
        note += f" Intervals: {method}."
    return ReportSection("Test metrics", note=note, tables=[pd.DataFrame(rows)])


def run_section(run: "RunView") -> ReportSection:
    import pandas as pd

    summary, board = run.summary, run.leaderboard
    facts: list[tuple[str, Any]] = []
    if summary is not None:
        s = summary.search
        facts += [("started", summary.started), ("wall time", f"{summary.wall_s:,.1f} s"),
                  ("objective", f"{s.get('objective')} ({s.get('direction')})"),
                  ("families searched", ", ".join(s.get("families") or [])),
                  ("budget", ", ".join(x for x in (f"{s['n_trials']} trials" if s.get("n_trials") else "",
                                                   f"{s['timeout_s']} s" if s.get("timeout_s") else "") if x)),
                  ("sampler / pruner", f"{s.get('sampler')} / {s.get('pruner')}"),
                  ("trials in the study", f"{s.get('trials_in_study')} ({s.get('trials_new')} new in this run)"),
                  ("workers", s.get("workers") or "in-process"), ("engine", s.get("engine")), ("seed", s.get("seed"))]
    tables = []
    if board is not None and len(board):
        counts = board["state"].value_counts()
        facts.append(("trials by state", ", ".join(f"{n} {state}" for state, n in counts.items())))
        if "duration_s" in board:
            facts.append(("time in trials", f"{board['duration_s'].sum():,.1f} s"))
    if summary is not None and summary.versions:
        tables.append(pd.DataFrame({"package": list(summary.versions),
                                    "version": [v or "not installed" for v in summary.versions.values()]}))
    note = "How the search ran (run.json, leaderboard.csv)."
    if summary is None:
        note += f" run.json cannot be read: {run.why_not('summary')}"
    return ReportSection("Run", note=note, html=facts_html(facts), tables=tables)


def _plain(value: Any) -> str:
    return json.dumps(value, default=str) if value else ""
