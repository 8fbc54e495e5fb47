"""The search, as Optuna draws it: `optuna.visualization` plots of the run's own study (loaded from its
storage), and one chart Optuna has no plot for: the model families compared, from leaderboard.csv."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

from automl.report.section import ReportSection

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.report.run_view import RunView

#: Parallel coordinates get unreadable beyond this many axes.
MAX_AXES = 8


def sections(run: "RunView") -> list[Any]:
    study = run.study
    families = [lambda: families_section(run)]
    if study is None:
        return [lambda: ReportSection("Optimisation history", key="optimisation-history",
                                      note=f"The study cannot be loaded, so Optuna's plots are left out: "
                                           f"{run.why_not('study')}."), *families]
    direction = study.direction.name.lower()
    objective = study.user_attrs.get("metric", "the objective")
    return [
        lambda: _optuna("Optimisation history", study, "plot_optimization_history",
                        f"{objective} ({direction}) of each trial on validation, and the best so far."),
        lambda: _optuna("Parameter importances", study, "plot_param_importances",
                        f"How much of the variation of {objective} across completed trials each searched parameter "
                        "explains (Optuna's default evaluator, PED-ANOVA). Family parameters count only in trials of "
                        "their family."),
        lambda: _optuna("Parallel coordinates", study, "plot_parallel_coordinate",
                        "Each completed trial as a line through its parameters and its objective; the parameters "
                        "every family shares (the family itself and the training hyperparameters).",
                        params=_shared_params(study)),
        *families,
        lambda: _optuna("Trials over time", study, "plot_timeline",
                        "When each trial ran and how it ended (complete, pruned, failed): pruned trials stop early, "
                        "and the bar's length is the trial's wall time."),
    ]


def _optuna(title: str, study: "optuna.Study", plot: str, note: str, **kwargs: Any) -> ReportSection:
    import optuna.visualization as vis

    draw: Callable[..., Any] = getattr(vis, plot)
    with warnings.catch_warnings():  # "some regimes have less than 2 trials": expected in a short search
        warnings.simplefilter("ignore")
        figure = draw(study, **kwargs)
    figure.update_layout(title_text="")
    return ReportSection(title, note=note, figures=(figure,))


def _shared_params(study: "optuna.Study") -> list[str]:
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return []
    shared = set(done[0].params)
    for t in done[1:]:
        shared &= set(t.params)
    first = ["family"] if "family" in shared else []
    return (first + sorted(shared - {"family"}))[:MAX_AXES]


def families_section(run: "RunView") -> ReportSection:
    """The objective of each completed trial, by model family: a box per family with every trial drawn."""
    import plotly.express as px

    board = run.leaderboard
    title = "Model families compared"
    if board is None:
        return ReportSection(title, note=f"leaderboard.csv cannot be read: {run.why_not('leaderboard')}")
    done = board[(board["state"] == "complete") & board["value"].notna()] if "state" in board else board.iloc[:0]
    if "family" not in done or done.empty:
        return ReportSection(title, note="No completed trial records its model family.")
    counts = board.groupby("family")["state"].value_counts().unstack(fill_value=0) if "family" in board else None
    objective = run.summary.search.get("objective", "objective") if run.summary is not None else "objective"
    figure = px.box(done, x="family", y="value", points="all", color="family", hover_data=["number"],
                    labels={"value": objective, "family": "model family"})
    figure.update_layout(showlegend=False)
    tables = []
    if counts is not None:
        counts = counts.reset_index().rename(columns={"family": "model family"})
        counts.columns.name = None
        tables.append(counts)
    return ReportSection(title, note=f"{objective} of every completed trial by model family (leaderboard.csv); "
                                     "the table counts trials by how they ended.",
                         figures=(figure,), tables=tables)
