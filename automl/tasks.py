"""The words every layer shares: task names and metric directions.

The lowest room of the house: it imports nothing, so specs, pipelines, metrics and plugins can all use it.
"""

from __future__ import annotations

#: The tasks the host's own tabular pipeline handles. Plugins may add tasks with a pipeline of their own.
BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TABULAR_TASKS = frozenset({BINARY, MULTICLASS, REGRESSION})
CLASSIFICATION = frozenset({BINARY, MULTICLASS})

MAXIMIZE, MINIMIZE = "maximize", "minimize"
