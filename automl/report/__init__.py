"""`report.html`: one self-contained page per run, written at the end of every run and by `automl report`.

```
RunView (run_view.py: the run directory, typed; test rows re-derived and scored, no retraining)
  -> sections: summary.py (data, model, test metrics, run), search.py (optuna.visualization of the study),
     model.py (learning curves, calibration, confusion matrix), explanations.py (feature importance),
     and every plugin's `automl_report_sections(run)` hook (ReportSection, section.py)
  -> page.py (one offline HTML file: plotly.js and pictures inline, print CSS) -> RUN_DIR/report.html
```

Importing this package is light; `write_report` imports plotly, optuna, torch and pandas when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl import lazy_attributes
from automl.report.section import ReportSection

if TYPE_CHECKING:  # pragma: no cover
    from automl.report.build import write_report, write_report_safely
    from automl.report.run_view import RunView, TestRows

__all__ = ["ReportSection", "RunView", "TestRows", "write_report", "write_report_safely"]

__getattr__ = lazy_attributes("automl.report", {
    "RunView": "automl.report.run_view",
    "TestRows": "automl.report.run_view",
    "write_report": "automl.report.build",
    "write_report_safely": "automl.report.build",
})
