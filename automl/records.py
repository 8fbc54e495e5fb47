"""The typed hand-offs between rooms: what a trial stores, what a search ends with, what a predictor says.

- `TrialRecord`: what the objective stores on an Optuna trial (its user attributes) and what finalize, the
  leaderboard and the progress line read back. Attribute names are the record's field names, written and
  read here only, so no other module spells them.
- `Member` and `PredictorMeta`: the predictor's `predictor.json`, with explicit fields for what the host
  reads (members, decision threshold, calibration) and two open sections for the pipeline's own state and
  the domain's own notes.
- `FinalReport` (what `metrics.json` holds: metric values apart from metadata, the ensemble beside the best trial), `FinalModel` (what the
  final evaluation returns, also across the worker's process boundary as JSON) and `SearchOutcome` (the
  search's result, from which `automl.run.RunResult` is read).
- `DataSummary` (what the data was: source, shape, what was left out and why, the split; filled by the
  pipeline's `prepare`) and `RunSummary` (`run.json`: the data, the search, the wall time, the versions), which
  the model card and the report read.

Nothing here imports torch, pandas or optuna at module level.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from automl.errors import AutoMLError

if TYPE_CHECKING:  # pragma: no cover
    import optuna


# ---------------------------------------------------------------------------------------------------------
# What a trial stores
# ---------------------------------------------------------------------------------------------------------


@dataclass
class TrialRecord:
    """The user attributes of one trial. `None` means "not recorded" (a pruned trial has no `fit_s`)."""

    #: The model family and its sampled architecture (plain JSON), and the training hyperparameters.
    family: Optional[str] = None
    params: Optional[dict[str, Any]] = None
    hp: Optional[dict[str, Any]] = None
    #: Epochs trained (the most over folds when cross-validated) and the epoch whose weights were kept.
    epochs: Optional[int] = None
    best_epoch: Optional[int] = None
    #: Wall seconds of the fit and of forward + backward + optimiser steps alone.
    fit_s: Optional[float] = None
    compute_s: Optional[float] = None
    #: Cross-validated trials: the objective per fold and its standard deviation.
    cv_scores: Optional[list[float]] = None
    cv_std: Optional[float] = None
    #: Why the trial failed or was interrupted (one line).
    fail_reason: Optional[str] = None
    #: Why a pruned trial stopped: the pruner's verdict, or the search's deadline.
    stopped: Optional[str] = None
    #: The process that ran the trial (host:pid): a trial left running by a dead process names it.
    process: Optional[str] = None
    #: The run it belongs to (`automl.search.resume.run_key`): what "the same command" counts and continues.
    run: Optional[str] = None
    #: The trial was cut short by a signal or a dead process; its parameters are queued to run again.
    interrupted: Optional[bool] = None
    #: This trial repeats the parameters of that interrupted trial.
    rerun_of: Optional[int] = None
    #: Under `privacy.epsilon`: the epsilon its DP-SGD training spent (the accountant, over the steps it took), and
    #: the whole accounting (delta, budget, noise multiplier, sample rate, steps, clipping norm).
    epsilon: Optional[float] = None
    privacy: Optional[dict[str, Any]] = None
    #: `search.constraints`: whether the trial met every one on validation (infeasible trials never become the
    #: model), the values measured (constraints and objectives), and the threshold they were judged at.
    feasible: Optional[bool] = None
    measured: Optional[dict[str, Any]] = None
    threshold: Optional[float] = None
    #: How far each constraint was missed (<= 0: met), for Optuna's constrained sampler.
    constraint_violations: Optional[list[float]] = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def integer_names(cls) -> tuple[str, ...]:
        """Fields holding whole numbers (a table must not show an epoch count as 3.0)."""
        import typing

        hints = typing.get_type_hints(cls)
        return tuple(f.name for f in fields(cls) if hints[f.name] == Optional[int])

    @classmethod
    def of(cls, trial: "optuna.trial.FrozenTrial | optuna.Trial") -> "TrialRecord":
        """The record as stored on a trial (a running or a frozen one)."""
        attrs = trial.user_attrs
        return cls(**{name: attrs.get(name) for name in cls.names()})

    def save(self, trial: "optuna.Trial") -> None:
        """Store every recorded (non-None) field on a running trial."""
        for name, value in self._recorded().items():
            trial.set_user_attr(name, value)

    @classmethod
    def note(cls, trial: "optuna.Trial", **values: Any) -> None:
        """Store some fields now (e.g. `epochs` when a trial is pruned); unknown names are a programming error."""
        cls(**values).save(trial)

    @classmethod
    def note_in_storage(cls, storage: Any, trial_id: int, **values: Any) -> None:
        """Store fields on a trial through the storage, for a trial no process is running any more."""
        for name, value in cls(**values)._recorded().items():
            storage.set_trial_user_attr(trial_id, name, value)

    def _recorded(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


# ---------------------------------------------------------------------------------------------------------
# What a predictor says about itself
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Member:
    """One model of the saved predictor: a trial's network, or its fold models averaged (`folds` > 0)."""

    trial: int
    family: str
    params: dict[str, Any]
    hp: dict[str, Any] = field(default_factory=dict)
    #: Share of the predictor's output (members' probabilities or values are averaged with these weights).
    weight: float = 1.0
    #: 0: one network; k: the average of k fold models trained in the trial's cross-validation.
    folds: int = 0


@dataclass
class PredictorMeta:
    """`predictor.json`: everything needed to rebuild a predictor from data files, no code.

    The host reads and writes the explicit fields; `data` is the pipeline's own state (a tabular pipeline's
    target, classes and columns; a recommender's column roles) and `notes` the domain's own (a cut-off's
    target, a top-K cut-off), both plain JSON.
    """

    FORMAT: ClassVar[int] = 3

    pipeline: str
    domain: str
    task: str
    #: The `DataInfo` of the prepared data, as a dict (the model families' only view of the data).
    info: dict[str, Any]
    members: list[Member]
    objective: str
    domain_options: Optional[dict[str, Any]] = None
    #: The objective of the trial (or ensemble) the predictor holds, on validation rows or out of fold.
    validation_value: Optional[float] = None
    #: Binary tasks: P(positive) at or above this is labelled positive (the domain's operating point).
    threshold: Optional[float] = None
    #: Binary tasks: the calibration map applied to P(positive) (`automl.tabular.calibration`).
    calibration: Optional[dict[str, Any]] = None
    data: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT
    #: The SHA-256 of every other file of the predictor folder, by path (`automl.integrity`; written after
    #: the format saved its files, checked before it loads them).
    files: Optional[dict[str, str]] = None
    #: The plugin distribution behind the domain and each family: {"model family tabm": "dist==version"}.
    requires: Optional[dict[str, str]] = None

    @property
    def lead(self) -> Member:
        """The member with the largest weight (the single model when there is one)."""
        return max(self.members, key=lambda m: m.weight)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str) -> "PredictorMeta":
        """Read `predictor.json`; a file of another format or shape is a one-line error naming it."""
        if not isinstance(raw, dict) or raw.get("format") != cls.FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else None
            raise AutoMLError(f"{where}: predictor format {found} is not supported by this version of automl (it "
                              f"reads format {cls.FORMAT}): run the search again to save it anew")
        known = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in raw.items() if k in known}
            values["members"] = [Member(**m) for m in raw["members"]]
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise AutoMLError(f"{where}: predictor.json is not complete ({exc}): run the search again to save "
                              "it anew") from None


# ---------------------------------------------------------------------------------------------------------
# What a search ends with
# ---------------------------------------------------------------------------------------------------------


@dataclass
class FinalReport:
    """`metrics.json`: the final model measured once on the test rows, values apart from metadata.

    `test` and `validation` hold metric values only (a float, or None where undefined); `ci95` the 95%
    intervals a domain computes; `details` the domain's structured results (a decision, fairness per group,
    an operating point); `model` what was evaluated.
    """

    FORMAT: ClassVar[int] = 2

    test: dict[str, Optional[float]]
    validation: dict[str, Optional[float]]
    model: dict[str, Any]
    n_test: int
    #: How the validation figures were obtained: "validation split (N rows)" or "out-of-fold ...".
    validation_rows: str
    ci95: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: The ensemble, when the final model is one: its members (trial, family, weight), selection rounds, its and
    #: the best trial's held-out objective.
    ensemble: Optional[dict[str, Any]] = None
    #: The best trial alone on the same test rows, beside the ensemble (`test`: metric values).
    best_single: Optional[dict[str, Any]] = None
    #: The members trained once more on all development rows (`search.ensemble.refit`): how many, on how many
    #: rows, for how many epochs, and the final model as searched on the same test rows (`test_searched`).
    refit: Optional[dict[str, Any]] = None
    #: Per sensitive attribute (`data.sensitive`): group rates and the fairness differences at the decision
    #: threshold on test, with 95% intervals (`automl.fairness`).
    fairness: dict[str, Any] = field(default_factory=dict)
    #: The search's constraints and how the final model meets them on validation (`automl.search.constraints`).
    constraints: Optional[dict[str, Any]] = None
    #: Under `privacy.epsilon`: the released model's DP accounting, the search's composition over every trial, and
    #: what the guarantee does not cover (`automl.training.private.final_privacy`).
    privacy: Optional[dict[str, Any]] = None
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return _finite(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "FinalReport":
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


@dataclass
class FinalModel:
    """What the final evaluation returns: the predictor's best trial and its report (plain JSON)."""

    number: int
    value: float
    family: str
    params: dict[str, Any]
    report: FinalReport

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["report"] = self.report.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "FinalModel":
        return cls(**{**raw, "report": FinalReport.from_json(raw["report"])})


@dataclass
class SearchOutcome:
    """What one invocation's search ends with: the study's trials and the final model (None when it was stopped
    before any trial finished)."""

    trials: list[Any]
    n_new: int
    final: Optional[FinalModel]
    #: Why the search was stopped early (Ctrl-C, SIGTERM), and the exit code that says so; None: it was not.
    interrupted: Optional[str] = None
    exit_code: int = 0
    #: What went wrong without stopping the search (a worker process died): one line each.
    problems: list[str] = field(default_factory=list)
    #: Trials lost to a dead process (recorded as interrupted; the same command runs them again).
    lost: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# What a run was
# ---------------------------------------------------------------------------------------------------------


@dataclass
class DataSummary:
    """The data of a run as its pipeline prepared it: plain JSON, no row of it."""

    #: Where it came from: a registered dataset's name, a file's name, or "dataframe".
    source: str
    #: Rows prepared (after rows with a missing target were dropped) and rows dropped that way.
    rows: int
    task: str
    target: Optional[str] = None
    #: Feature columns by kind, e.g. {"numeric": [...], "categorical": [...]}.
    features: dict[str, list[str]] = field(default_factory=dict)
    #: Classification: rows per class (all prepared rows); binary: the class whose probability is predicted.
    classes: Optional[dict[str, int]] = None
    positive_class: Any = None
    #: Every column that is not a feature, with the reason: the dataset's and the config's drops, identifiers,
    #: sensitive attributes, the group column, the target.
    dropped: dict[str, str] = field(default_factory=dict)
    dropped_rows: int = 0
    sensitive: list[str] = field(default_factory=list)
    #: Rows per part of the split, and how trials were validated.
    split: dict[str, int] = field(default_factory=dict)
    validation: str = ""
    #: A pipeline's own facts (a recommender's users and items...).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    """`run.json`: what a run was, for the model card and the report."""

    FORMAT: ClassVar[int] = 1

    domain: str
    data: DataSummary
    #: The search: objective, families, budget, sampler, trials in the study and new in this run, workers.
    search: dict[str, Any]
    started: str
    wall_s: float
    #: Versions of automl, each plugin and the main libraries.
    versions: dict[str, Optional[str]]
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return _finite(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "RunSummary":
        values = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
        values["data"] = DataSummary(**raw["data"])
        return cls(**values)


def _finite(value: Any) -> Any:
    """JSON has no NaN: an undefined value is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
