"""The Python SDK: the same config schema and overrides as the command line.

    from automl import AutoML
    result = AutoML(domain="tabular", overrides=["search.n_trials=5"]).fit(data=df, target="y")
    result.leaderboard, result.best_params, result.test_metrics, result.run_dir
    predictor = automl.load(result.run_dir)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

from automl.config import RunConfig

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.host import PluginHost
    from automl.run import RunResult


class AutoML:
    """A configured search. `fit` runs it; every call is one run (one study in one run directory).

    :param domain: the business vertical (``automl plugins`` lists installed domains).
    :param overrides: Hydra-style ``key=value`` overrides, exactly as on the command line.
    :param plugins: extra plugin objects to register in-process (tests, notebooks).
    :param entry_points: discover installed plugins (turn off for a hermetic host).
    :param host: an already built `PluginHost` (then ``plugins``/``entry_points`` are ignored).
    """

    def __init__(self, domain: str = "tabular", overrides: Iterable[str] = (), *, plugins: Iterable[Any] = (),
                 entry_points: bool = True, host: Optional["PluginHost"] = None) -> None:
        from automl.compose import compose
        from automl.host import PluginHost

        self.host = host or PluginHost(entry_points=entry_points, plugins=plugins)
        self.overrides = [f"domain={domain}", *overrides]
        self.config = RunConfig.from_container(compose(self.host, self.overrides))
        if not any(o.lstrip("+").startswith("run_dir=") for o in overrides):
            self.config.run_dir = None  # each fit gets a fresh timestamped folder under runs/

    def fit(self, data: "pd.DataFrame | str | Path | None" = None, target: Optional[str] = None, *,
            dataset: Optional[str] = None, run_dir: Optional[str | Path] = None) -> "RunResult":
        """Search on a DataFrame, a CSV/Parquet path, or a registered dataset, and return the result."""
        from automl.run import run

        cfg = copy.deepcopy(self.config)
        frame = None
        if isinstance(data, (str, Path)):
            cfg.data.path = str(data)
        elif data is not None:
            frame = data
        if target is not None:
            cfg.data.target = target
        if dataset is not None:
            cfg.dataset = dataset
        if run_dir is not None:
            cfg.run_dir = str(run_dir)
        cfg.validate()
        return run(cfg, self.host, frame=frame)
