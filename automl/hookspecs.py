"""Hook specifications: the whole contract between the host and a plugin.

A plugin is a module (or object) with functions named like the hooks below, marked with `automl.hookimpl`,
and made discoverable by an entry point in the group ``automl``::

    # pyproject.toml of the plugin
    [project.entry-points.automl]
    my_domain = "my_package.plugin"

Plugins import what they use from `automl.api` (this marker, the specs, the pipeline contract, the evaluation
types, errors and shared helpers). Registration hooks return a list of specs; the host validates each item,
rejects a name that another plugin registered already (the error names both plugins) and records a hook that
raises, so a broken plugin is reported by ``automl plugins`` and skipped while the others keep working.

Rules of thumb for plugin modules: import nothing heavy at module level (no torch, pandas, lightning):
``automl plugins`` and ``automl --help`` import every plugin and must stay fast. Put heavy imports inside the
callables your specs carry.

The host registers its own building blocks (the ``tabular`` domain, the MLP family, standard metrics)
through these same hooks, in `automl.builtin`.

Writing a plugin: ``docs/plugins.md`` (the guide), ``automl new-plugin NAME`` (a scaffold that passes its own
tests), `automl.testing.check_plugin` and the pytest fixture ``automl_contract`` (the contract check, also
``automl plugins --check``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from automl.specs import DatasetSpec, DomainSpec, MetricSpec, ModelFamily

PROJECT = "automl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------------
# Registration: called once per host, each plugin's implementation on its own.
# ---------------------------------------------------------------------------------------------------------


@hookspec
def automl_register_domains() -> "list[DomainSpec]":
    """Return the domains (business verticals) this plugin provides.

    A domain names its tasks and the metrics it reports per task (the first one is the default objective),
    the model families it may search (``None``: every family that supports the task), its default dataset,
    and optionally its own data pipeline, a typed options dataclass and a report writer.

    :return: a list of `automl.specs.DomainSpec`.

    Called when the host builds its registries. Pair it with `automl_config_dirs` so that
    ``automl domain=<name>`` resolves on the command line.
    """


@hookspec
def automl_register_datasets() -> "list[DatasetSpec]":
    """Return the datasets this plugin ships.

    Each spec names its target, the columns it drops and why (row numbers, identifiers, leakage), its
    identifier and sensitive columns and its source. The loader must work offline and is called only when a
    run asks for the dataset.

    :return: a list of `automl.specs.DatasetSpec`.
    """


@hookspec
def automl_register_model_families() -> "list[ModelFamily]":
    """Return the model families this plugin provides.

    A family has a define-by-run ``search_space(trial, info)`` (architecture choices; the host namespaces the
    parameter names and adds learning rate, weight decay and batch size) returning a dict of plain JSON values
    (it is stored with the trial and in the predictor), and either ``network(params, info)`` returning a
    plain ``torch.nn.Module`` trained with the host's objective, or ``build(params, info)`` returning a
    ``LightningModule`` with its own training logic. Tabular networks are called as ``net(x_num, x_cat)`` and
    return logits of shape ``(rows, outputs)``.

    :return: a list of `automl.specs.ModelFamily`.
    """


@hookspec
def automl_register_metrics() -> "list[MetricSpec]":
    """Return the metrics this plugin provides.

    Each metric has a direction (``maximize`` / ``minimize``), the tasks it applies to and a function
    ``fn(y_true, y_score) -> float`` over numpy arrays. Raise ``ValueError`` when the metric is undefined on
    the rows given (e.g. one class only): the host records NaN instead.

    :return: a list of `automl.specs.MetricSpec`.
    """


@hookspec
def automl_config_dirs() -> "list[str]":
    """Return Hydra config folders this plugin ships, as ``pkg://<package>.<folder>`` or absolute paths.

    A folder holding ``domain/<name>.yaml`` makes ``automl domain=<name>`` resolve on the command line while
    the plugin is installed (and stop resolving once it is uninstalled). The folder must be a package (with
    an ``__init__.py``) for ``pkg://`` paths.

    :return: a list of search-path entries.
    """


# ---------------------------------------------------------------------------------------------------------
# Observers: called during a run, for loggers and reports. Return values are ignored; an observer that
# raises is logged and skipped, it never stops the run.
# ---------------------------------------------------------------------------------------------------------


@hookspec
def automl_trial_finished(trial: Any, run_dir: str) -> None:
    """Called in the process that ran the trial, after it finished (complete, pruned or failed).

    :param trial: the ``optuna.trial.FrozenTrial`` as stored (state, value, params, user attributes).
    :param run_dir: the run directory.
    """


@hookspec
def automl_run_finished(result: Any) -> None:
    """Called once after the final evaluation and after every artifact is written.

    :param result: the `automl.run.RunResult` (run directory, leaderboard, best parameters, test metrics).
    """


# ---------------------------------------------------------------------------------------------------------
# The report: called when `report.html` is written (at the end of every run, and by ``automl report``).
# ---------------------------------------------------------------------------------------------------------


@hookspec
def automl_report_sections(run: Any) -> "list[Any]":
    """Return the sections this plugin adds to a run's ``report.html`` (a domain's own curves and tables).

    Called for every run, in the process that writes the report: return ``[]`` for runs of other domains
    (``run.domain``). The host's own sections (summary, search, model, explanations) come first; a plugin's
    follow under a heading of their own.

    :param run: an `automl.api.RunView` of the finished run, read from its directory: ``run.metrics``
        (metrics.json: ``test``, ``ci95``, ``details``), ``run.summary`` (run.json), ``run.meta``
        (predictor.json: threshold, calibration, notes), ``run.leaderboard``, ``run.predictor``,
        ``run.path(name)`` (a file the domain's evaluation wrote) and ``run.test``: the test rows re-derived
        and scored by the saved model (``y``, ``scores`` as the domain's metrics take them, ``threshold``,
        ``prepared``), or None when they cannot be re-derived (``run.why_not("test")`` says why: draw from
        metrics.json and the files instead, or say so in a section's ``note``).
    :return: a list of `automl.api.ReportSection` (title, note, trusted ``html``, plotly ``figures``,
        DataFrame ``tables``, ``images`` inlined as data URIs), or of zero-argument callables returning one,
        so that each section is built on its own. Import plotly inside the functions, never at module level.

    A hook or a section that raises is logged and listed under "Left out" in the report; the others render
    and the run is never failed by its report.
    """
