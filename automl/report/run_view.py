"""`RunView`: a finished run as the report reads it, from its directory alone (no retraining).

What the run wrote is read as typed records: `metrics.json` (`FinalReport`), `run.json` (`RunSummary`),
`predictor/predictor.json` (`PredictorMeta`), `leaderboard.csv`, the composed config (`.hydra/config.yaml`,
a `RunConfig`) and the Optuna study in the run's storage. Two things are derived on first use:

- `predictor`: `automl.load(run_dir)`;
- `test` (`TestRows`): the test rows re-derived as the run derived them (the config ->
  `automl.plan.resolve(cfg, host).prepare(...)`, whose `test` indexes the prepared rows) and scored by the
  saved model through the pipeline's own `DeviceData.predict`, so the scores are exactly what the final
  evaluation measured. The data's fingerprint must match the one the study recorded; a DataFrame passed to
  the SDK cannot be re-derived from the directory. When something cannot be had, `why_not(name)` says why in
  one sentence, and the sections that need it say so in the report.

Plugins receive a `RunView` in `automl_report_sections(run)` (exported by `automl.api`). Nothing heavy is
imported at module level.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from automl.records import FinalReport, PredictorMeta, RunSummary

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import pandas as pd

    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import Prepared

log = logging.getLogger(__name__)

METRICS, RUN, LEADERBOARD, PREDICTOR, CONFIG = ("metrics.json", "run.json", "leaderboard.csv",
                                               "predictor/predictor.json", ".hydra/config.yaml")
DEFAULT_STUDY = "automl"
#: Re-derived test scores must reproduce metrics.json's objective to this tolerance.
REPRODUCE_TOL = 1e-6


@dataclass(frozen=True)
class TestRows:
    """The run's test rows, re-derived from its config and scored by its saved model.

    `y` and `scores` are in the form the domain's metrics take (`MetricSpec.fn(y, scores)`): for the tabular
    pipeline, binary `y` is 0/1 and `scores` the calibrated P(positive) the saved predictor returns;
    multiclass `scores` is a probability matrix; a recommender's `y` holds each evaluated user's held-out item
    and `scores` a score per item with the user's earlier items masked.
    """

    y: "np.ndarray"
    scores: "np.ndarray"
    #: The prepared data as the pipeline re-derived it (`prepared.test` indexes the rows scored here).
    prepared: "Prepared"
    #: Binary tasks: the saved decision threshold on `scores`.
    threshold: Optional[float] = None
    #: Tabular data: the raw test rows (the model's original feature columns), for explanations; else None.
    rows: Optional["pd.DataFrame"] = None
    #: Sensitive attributes of the test rows (reported on, never trained on).
    side: dict[str, "np.ndarray"] = field(default_factory=dict)
    #: One sentence: whether the scores reproduce metrics.json's objective.
    check: str = ""


class RunView:
    """A read-only view of one run directory. Files are read when first asked for; a missing or unreadable
    one reads as None (with the reason in `why_not`).

    :param run_dir: the run directory.
    :param host: the plugins to load the predictor and resolve the domain with (default: the installed ones).
    :param config: the run's config (default: `.hydra/config.yaml`; the SDK passes the one it ran with).
    :param frame: the DataFrame the run was given, when there was one (the end of an SDK run passes it).
    :param storage: an Optuna storage URL to read the study from instead of the one the config names (a
        database URL whose password the config does not keep).
    """

    def __init__(self, run_dir: str | Path, host: Optional["PluginHost"] = None,
                 config: Optional["RunConfig"] = None, frame: Optional["pd.DataFrame"] = None,
                 storage: Optional[str] = None) -> None:
        self.run_dir = Path(run_dir).expanduser()
        self._host, self._config, self._frame, self._storage = host, config, frame, storage
        self._cache: dict[str, Any] = {}
        self._why: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RunView({str(self.run_dir)!r}, domain={self.domain!r}, task={self.task!r})"

    # -- files -------------------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """A file of the run directory (e.g. a table or picture the domain's evaluation wrote)."""
        return self.run_dir / name

    @property
    def metrics(self) -> Optional[FinalReport]:
        """`metrics.json`: test and validation metric values, 95% intervals, the domain's details, the model."""
        return self._once("metrics", lambda: FinalReport.from_json(self._json(METRICS)))

    @property
    def summary(self) -> Optional[RunSummary]:
        """`run.json`: the data (rows, features, classes, what was dropped and why), the search, wall time."""
        return self._once("summary", lambda: RunSummary.from_json(self._json(RUN)))

    @property
    def meta(self) -> Optional[PredictorMeta]:
        """`predictor/predictor.json`: members, threshold, calibration, the pipeline's and domain's sections."""
        return self._once("meta", lambda: PredictorMeta.from_json(self._json(PREDICTOR), str(self.path(PREDICTOR))))

    @property
    def leaderboard(self) -> Optional["pd.DataFrame"]:
        """`leaderboard.csv`: one row per trial."""

        def read() -> "pd.DataFrame":
            import pandas as pd

            if not self.path(LEADERBOARD).exists():
                raise FileNotFoundError(f"{LEADERBOARD} is missing")
            return pd.read_csv(self.path(LEADERBOARD))

        return self._once("leaderboard", read)

    @property
    def config(self) -> Optional["RunConfig"]:
        """The run's composed config: as given, or `.hydra/config.yaml` (written by the command line)."""
        if self._config is not None:
            return self._config

        def read() -> "RunConfig":
            from automl.config import RunConfig

            if not self.path(CONFIG).exists():
                raise FileNotFoundError(f"{CONFIG} is missing: runs from the Python SDK do not write it")
            return RunConfig.of_run(self.run_dir)

        return self._once("config", read)

    @property
    def domain(self) -> Optional[str]:
        for source in (self.meta, self.summary):
            if source is not None:
                return source.domain
        return self.config.domain.name if self.config is not None else None

    @property
    def task(self) -> Optional[str]:
        if self.meta is not None:
            return self.meta.task
        return self.summary.data.task if self.summary is not None else None

    @property
    def host(self) -> "PluginHost":
        if self._host is None:
            from automl.host import PluginHost

            self._host = PluginHost.installed()
        return self._host

    def why_not(self, name: str) -> str:
        """Why `name` (metrics, summary, meta, leaderboard, config, study, predictor, test) is None: one sentence."""
        return self._why.get(name, "")

    # -- derived -----------------------------------------------------------------------------------------

    @property
    def study(self) -> Optional["optuna.Study"]:
        """The run's Optuna study, loaded from its storage (read only)."""
        return self._once("study", self._load_study)

    @property
    def predictor(self) -> Any:
        """The saved predictor (`automl.load(run_dir)`), loaded once."""

        def load() -> Any:
            from automl.predictor import load as load_predictor

            return load_predictor(self.run_dir, self.host)

        return self._once("predictor", load)

    @property
    def test(self) -> Optional[TestRows]:
        """The test rows re-derived and scored (None, with `why_not("test")`, when they cannot be)."""
        return self._once("test", self._derive_test)

    # -- loading -----------------------------------------------------------------------------------------

    def _once(self, name: str, make: Any) -> Any:
        if name not in self._cache:
            try:
                self._cache[name] = make()
            except Exception as exc:  # noqa: BLE001 - a part that cannot be read is left out with its reason
                self._cache[name] = None
                self._why[name] = _one_line(exc)
                log.debug("report: %s unavailable: %s", name, self._why[name], exc_info=True)
        return self._cache[name]

    def _json(self, name: str) -> Any:
        path = self.path(name)
        if not path.exists():
            raise FileNotFoundError(f"{name} is missing from {self.run_dir}")
        return json.loads(path.read_text())

    def _load_study(self) -> "optuna.Study":
        import optuna

        from automl.search.study import JOURNAL, make_storage, redact

        cfg = self.config
        url = self._storage or (cfg.search.storage if cfg is not None else None)
        if url and "***" in url:
            raise ValueError(f"the study is in search.storage={url}, whose password the run directory does not "
                             "keep: pass --storage URL (or storage=) to read it")
        if not url and not self.path(JOURNAL).exists():
            raise FileNotFoundError(f"{JOURNAL} is missing from {self.run_dir}")
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        storage = make_storage(url, self.run_dir)
        name = cfg.search.study_name if cfg is not None else None
        if name is None:  # no config: the storage's only study, or the default name
            names = optuna.get_all_study_names(storage)
            name = names[0] if len(names) == 1 else DEFAULT_STUDY
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise ValueError(f"no study named {name!r} in {redact(url) if url else JOURNAL}") from None

    def _derive_test(self) -> TestRows:
        import numpy as np
        import torch

        from automl.plan import resolve, resolve_source
        from automl.tasks import BINARY

        cfg, meta = self.config, self.meta
        if meta is None:
            raise ValueError(f"there is no saved predictor: {self.why_not('meta')}")
        if cfg is None:
            raise ValueError(f"{self.why_not('config')}, so the test rows cannot be re-derived")
        source = self.summary.data.source if self.summary is not None else None
        if self._frame is None and source == "dataframe":
            raise ValueError("the data was a DataFrame passed to the SDK, which the run directory does not keep, "
                             "so the test rows cannot be re-derived")
        predictor = self.predictor
        model = getattr(predictor, "model", None)
        if model is None:
            raise ValueError(f"the predictor ({self.why_not('predictor') or type(predictor).__name__}) exposes no "
                             "model to score the test rows with")
        resolution = resolve(cfg, self.host)
        with _quiet():  # the run's log has said all this once already
            table = resolve_source(cfg, self.host, resolution.domain, self._frame)
            prepared = resolution.pipeline.prepare(table, cfg)
        recorded = self.study.user_attrs.get("fingerprint") if self.study is not None else None
        if recorded and prepared.fingerprint and recorded != prepared.fingerprint:
            raise ValueError("the data re-derived from the config differs from the data the run used (its "
                             "fingerprint changed: was the file at data.path edited?)")
        data = resolution.pipeline.bind(prepared, torch.device("cpu"))
        rows = torch.as_tensor(prepared.test, dtype=torch.long)
        scores = data.predict(model, rows, cfg.trainer.eval_batch_size)
        y = data.targets(prepared.test)
        if meta.task == BINARY and meta.calibration:
            from automl.tabular.calibration import apply_calibration

            scores = apply_calibration(scores, meta.calibration)
        return TestRows(
            y=y, scores=scores, prepared=prepared, threshold=meta.threshold if meta.task == BINARY else None,
            rows=_raw_rows(table, prepared, predictor, scores, meta.task),
            side={k: np.asarray(v)[prepared.test] for k, v in prepared.side.items()},
            check=self._reproduces(y, scores),
        )

    def _reproduces(self, y: "np.ndarray", scores: "np.ndarray") -> str:
        """A sentence: do the re-derived scores give metrics.json's test value of the objective?"""
        import math

        meta, report = self.meta, self.metrics
        if report is None or meta is None or report.test.get(meta.objective) is None:
            return ""
        try:
            value = float(self.host.metrics.get(meta.objective).fn(y, scores))
        except Exception as exc:  # noqa: BLE001
            return f"could not recompute {meta.objective} on the re-derived rows: {_one_line(exc)}"
        recorded = float(report.test[meta.objective])
        same = math.isclose(value, recorded, rel_tol=REPRODUCE_TOL, abs_tol=REPRODUCE_TOL)
        return (f"the {len(y)} re-derived test rows reproduce metrics.json's test {meta.objective} ({recorded:.4f})"
                if same else f"warning: the re-derived test rows give {meta.objective} {value:.4f}, metrics.json "
                             f"says {recorded:.4f}: the data or the code changed since the run")


def _raw_rows(table: Any, prepared: "Prepared", predictor: Any, scores: "np.ndarray",
              task: str) -> Optional["pd.DataFrame"]:
    """Tabular runs: the test rows with the original feature columns, kept only when the saved predictor's
    preprocessing turns them into exactly the prepared rows that were scored (else the saved predictor, given
    them raw, must reproduce the scores)."""
    import numpy as np

    from automl.tasks import REGRESSION

    if not hasattr(predictor, "preprocessor") or getattr(table, "target", None) is None:
        return None
    from automl.data.checks import check_table

    with _quiet():
        features = check_table(table).features
    rows = features.iloc[prepared.test]
    arrays = prepared.arrays
    if "x_num" in arrays and "x_cat" in arrays:  # cheap: no model run
        x_num, x_cat = predictor.preprocessor.transform(rows)
        same = x_num.shape == arrays["x_num"][prepared.test].shape and \
            np.allclose(x_num, arrays["x_num"][prepared.test], atol=1e-6) and \
            np.array_equal(x_cat, arrays["x_cat"][prepared.test])
    else:
        again = predictor.predict(rows).to_numpy(dtype=float) if task == REGRESSION else \
            predictor.predict_proba(rows).to_numpy()
        if again.ndim == 2 and np.ndim(scores) == 1:
            again = again[:, list(predictor.classes).index(predictor.positive_class)]
        same = np.shape(again) == np.shape(scores) and np.allclose(again, scores, atol=1e-5)
    if not same:
        log.info("report: the raw test rows do not match the scored ones; explanations are left out")
        return None
    return rows


@contextmanager
def _quiet() -> Iterator[None]:
    """Re-deriving the data repeats the run's own log lines (columns dropped, split sizes): silence them."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        yield
    finally:
        logging.disable(previous)


def _one_line(exc: BaseException) -> str:
    """Our own reasons as they are; anything else with its type, which is part of what went wrong."""
    from automl.errors import AutoMLError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if isinstance(exc, (ValueError, FileNotFoundError, AutoMLError)) else f"{type(exc).__name__}: {text}"
