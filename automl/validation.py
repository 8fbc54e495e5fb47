"""Prediction-time checks: raw rows against what a predictor was fitted on, and scores before they become labels.

One layer for every way a model is asked for predictions: the SDK (`TabularPredictor.predict` /
`predict_proba`), `automl predict` and `automl serve` (and the ONNX export's scorer) all call `check_rows`
on the way in and `check_scores` / `decide_labels` on the way out, so a row is judged the same wherever it
is scored.

What is checked, per column of the predictor's `InputSchema`:

- a column the model was trained on is absent;
- a numeric column holds text that is not a number ("abc");
- a numeric column holds a non-finite number (inf, -inf);
- a categorical column holds a value that, as text, is not a category seen in training: allowed (it is scored
  as "unknown", code 0, exactly as the preprocessor does), noted in coerce mode;
- a date column holds text that does not parse in the format found at fit;
- a text column (read by the model's text encoder) is absent; any value is text (a number is read as its
  string) and a missing one is the empty text, so nothing else is refused;
- after scoring, a probability or value that is not finite (a number far beyond float32's range overflows
  the network): never a label for such a row.

Missing values (None, NaN, an empty CSV field) are not problems: the preprocessor imputes them by design.
Columns the schema does not know are ignored and listed.

Policies: `strict` (the SDK's and `automl predict`'s default; the service maps it to 422) refuses with one
`InvalidRows` line naming the column and the first rows; `coerce` imputes what it cannot use (as a missing
value), scores every row and returns a warning per row (None where the row was clean), and logs a count.

Nothing here imports torch: the service scores from an ONNX export without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import ConfigError, DataError
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

STRICT, COERCE = "strict", "coerce"
POLICIES = (STRICT, COERCE)
#: Row numbers an error message names before it says "and N more".
SHOWN_ROWS = 5
NUMERIC, CATEGORICAL, DATE, TEXT = "numeric", "categorical", "date", "text"
#: The "column" of a problem with the model's output rather than with an input.
OUTPUT = "(output)"
#: The largest float32 (numpy.finfo(numpy.float32).max): networks take float32 inputs.
FLOAT32_MAX = 3.4028234663852886e38


# ---------------------------------------------------------------------------------------------------------
# What a predictor takes and returns
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSchema:
    """The columns a tabular predictor takes (kinds, training dtypes, known categories) and what it returns.

    Plain JSON (`to_json` / `from_json`): `GET /schema` serves it and an export ships it, so the service can
    check rows without loading torch.
    """

    task: str
    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    #: Known categories per categorical column, as text (what the preprocessor's codes map from).
    categories: dict[str, tuple[str, ...]]
    #: Training dtypes of every feature column, in the table's order.
    dtypes: dict[str, str] = field(default_factory=dict)
    classes: Optional[tuple[Any, ...]] = None
    positive_class: Any = None
    #: Binary tasks: P(positive) at or above it is labelled positive.
    threshold: Optional[float] = None
    #: Date columns and the format their text is read with ("ISO8601" or a strftime format).
    dates: dict[str, str] = field(default_factory=dict)
    #: Free-text columns the model's text encoder reads (strings; missing is the empty text).
    text: tuple[str, ...] = ()

    FORMAT = 1

    @property
    def columns(self) -> list[str]:
        """Feature columns in the table's order (numeric first where the order is unknown)."""
        ours = (*self.numeric, *self.dates, *self.categorical, *self.text)
        known = [c for c in self.dtypes if c in ours]
        return known + [c for c in ours if c not in known]

    def kind(self, column: str) -> str:
        if column in self.text:
            return TEXT
        return NUMERIC if column in self.numeric else DATE if column in self.dates else CATEGORICAL

    @classmethod
    def of(cls, meta: Any, preprocessing: dict[str, Any]) -> "InputSchema":
        """From a predictor's `PredictorMeta` and its preprocessing state (`TabularPreprocessor.state`)."""
        data = meta.data
        categorical = list(preprocessing.get("categorical", []))
        codes = preprocessing.get("codes", [{} for _ in categorical])
        threshold = (0.5 if meta.threshold is None else float(meta.threshold)) if meta.task == BINARY else None
        return cls(
            task=meta.task, target=data["target"], numeric=tuple(preprocessing.get("numeric", [])),
            categorical=tuple(categorical), categories={c: tuple(k) for c, k in zip(categorical, codes)},
            dtypes=dict(data.get("columns") or {}),
            classes=tuple(data["classes"]) if data.get("classes") is not None else None,
            positive_class=data.get("positive_class"), threshold=threshold,
            dates={d["column"]: d.get("format", "ISO8601") for d in preprocessing.get("dates", [])},
            text=tuple((data.get("text") or {}).get("columns", ())),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT, "task": self.task, "target": self.target,
            "classes": list(self.classes) if self.classes is not None else None,
            "positive_class": self.positive_class, "threshold": self.threshold,
            "columns": [{"name": c, "kind": self.kind(c), "dtype": self.dtypes.get(c),
                         **({"categories": list(self.categories.get(c, ()))} if c in self.categorical else {}),
                         **({"format": self.dates[c]} if c in self.dates else {})}
                        for c in self.columns],
            "numeric": list(self.numeric), "categorical": list(self.categorical),
            **({"text": list(self.text)} if self.text else {}),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "InputSchema":
        if not isinstance(raw, dict) or raw.get("format") != cls.FORMAT:
            raise DataError(f"input schema format {raw.get('format') if isinstance(raw, dict) else None} is not "
                            f"supported (expects {cls.FORMAT}): export the run again")
        cols = {c["name"]: c for c in raw["columns"]}
        return cls(
            task=raw["task"], target=raw["target"], numeric=tuple(raw["numeric"]),
            categorical=tuple(raw["categorical"]),
            categories={c: tuple(cols[c].get("categories", ())) for c in raw["categorical"]},
            dtypes={name: c.get("dtype") for name, c in cols.items()},
            classes=tuple(raw["classes"]) if raw.get("classes") is not None else None,
            positive_class=raw.get("positive_class"), threshold=raw.get("threshold"),
            dates={name: c.get("format", "ISO8601") for name, c in cols.items() if c.get("kind") == DATE},
            text=tuple(raw.get("text", ())),
        )


# ---------------------------------------------------------------------------------------------------------
# Rows in
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One problem of one column, over some rows (positions counted from 0)."""

    column: str
    problem: str
    rows: tuple[int, ...]
    #: The first offending value, shown in messages (never more than one: rows may hold personal data).
    example: Any = None
    #: False for what is allowed in both policies (an unseen category): noted in coerce mode only.
    fatal: bool = True

    def describe(self, n_rows: int) -> str:
        if self.problem == _MISSING_COLUMN:
            return f"column {self.column!r} is missing (the model was trained on it)"
        shown = ", ".join(map(str, self.rows[:SHOWN_ROWS]))
        more = f" and {len(self.rows) - SHOWN_ROWS} more" if len(self.rows) > SHOWN_ROWS else ""
        where = f"row{'s' if len(self.rows) > 1 else ''} {shown}{more}"
        value = f" ({_shown(self.example)})" if self.example is not None else ""
        subject = "" if self.column == OUTPUT else f"column {self.column!r}: "
        return f"{subject}{self.problem}{value} in {where} (rows count from 0)"


def _shown(value: Any) -> str:
    """A value as a reader wants it: text quoted, numbers plain (no numpy reprs)."""
    value = value.item() if hasattr(value, "item") else value
    return repr(value) if isinstance(value, str) else str(value)


class InvalidRows(DataError):
    """Rows refused under the strict policy; `issues` says which column, what and where (for a 422 body).

    The message ends with how to fix it, the coerce policy included; `summary` is the same line without that
    policy hint, for callers that offer no such policy (the service).
    """

    def __init__(self, summary: str, issues: list[Issue], hint: str = "") -> None:
        super().__init__(f"{summary}{hint}")
        self.summary, self.issues = summary, issues


@dataclass
class CheckedRows:
    """The rows as the predictor will score them, and what was found on the way."""

    #: The schema's columns only, typed: numbers as float64 arrays (NaN: missing, to be imputed), categories as
    #: object arrays of text or NaN. `frame` is the same as a DataFrame with the input's index.
    arrays: dict[str, "np.ndarray"]
    index: "pd.Index"
    issues: list[Issue]
    #: Columns of the input the predictor does not use (the target, identifiers, typos), ignored.
    ignored: list[str]
    #: Coerce: one message per row (None where the row was clean). Strict: all None.
    warnings: list[Optional[str]]

    @property
    def frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame(self.arrays, index=self.index, copy=False)


_NOT_A_NUMBER = "text that is not a number"
_NOT_FINITE = "a number that is not finite (or past float32's range)"
_NOT_A_DATE = "text that is not a date in the training format"
_MISSING_COLUMN = "missing column"
_UNSEEN = "a category not seen in training (scored as unknown)"
_FIX = {
    _NOT_A_NUMBER: "send a number, or null for a missing value",
    _NOT_FINITE: "send a finite number, or null for a missing value",
    _NOT_A_DATE: "send the date as the training data wrote it (see /schema), or null",
    _MISSING_COLUMN: "add the column (null values are imputed)",
}


def check_rows(rows: "pd.DataFrame", schema: InputSchema, policy: str = STRICT) -> CheckedRows:
    """Check raw rows against `schema`; strict raises `InvalidRows` (one line), coerce imputes and warns."""
    import numpy as np
    import pandas as pd

    if policy not in POLICIES:
        raise ConfigError(f"policy={policy!r} is not valid: use {' or '.join(POLICIES)}")
    if not isinstance(rows, pd.DataFrame):
        raise DataError(f"predict takes a pandas DataFrame of raw rows, got {type(rows).__name__}")
    n = len(rows)
    everywhere = tuple(range(n))
    issues: list[Issue] = []
    arrays: dict[str, Any] = {}
    # numpy per column, not pandas Series operations: a served row pays this on every request
    for col in schema.numeric:
        if col not in rows.columns:
            issues.append(Issue(col, _MISSING_COLUMN, everywhere))
            arrays[col] = np.full(n, np.nan)
            continue
        raw = rows[col].to_numpy()
        if raw.dtype.kind in "fiub":  # already numbers: nothing to parse
            values = raw.astype(np.float64, copy=True)
            text = np.zeros(n, dtype=bool)
        else:  # text, objects, nullable dtypes: the preprocessor's own reading
            values = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            text = np.isnan(values) & ~pd.isna(raw)
        # inf, and numbers past float32's range, which the network's float32 inputs would turn into inf
        with np.errstate(invalid="ignore"):
            infinite = np.isinf(values) | (np.abs(values) > FLOAT32_MAX)
        for mask, problem in ((text, _NOT_A_NUMBER), (infinite, _NOT_FINITE)):
            if mask.any():
                where = np.flatnonzero(mask)
                issues.append(Issue(col, problem, tuple(int(i) for i in where), example=raw[where[0]]))
        values[text | infinite] = np.nan  # coerce: imputed like any missing value
        arrays[col] = values
    for col, fmt in schema.dates.items():
        if col not in rows.columns:
            issues.append(Issue(col, _MISSING_COLUMN, everywhere))
            arrays[col] = np.full(n, np.nan, dtype=object)
            continue
        # the preprocessor's own reading (by the format found at fit); text that is no date is imputed
        from automl.data.checks import parse_dates

        raw = rows[col]
        bad = (parse_dates(raw, fmt).isna() & raw.notna()).to_numpy()
        if bad.any():
            where = np.flatnonzero(bad)
            values = raw.to_numpy(dtype=object, copy=True)
            issues.append(Issue(col, _NOT_A_DATE, tuple(int(i) for i in where), example=values[where[0]]))
            values[bad] = np.nan
            arrays[col] = values
        else:  # as given: datetime64 stays datetime64 (time zone included) for the preprocessor
            arrays[col] = raw.array.copy()
    def as_text(col: str) -> Optional[tuple["np.ndarray", "np.ndarray"]]:
        """The column's values as text (415 -> "415"; missing stays missing), as the preprocessor and the text
        encoder read them, and where they are missing; None (and an issue) when the rows lack the column."""
        if col not in rows.columns:
            issues.append(Issue(col, _MISSING_COLUMN, everywhere))
            arrays[col] = np.full(n, np.nan, dtype=object)
            return None
        raw = rows[col].to_numpy(dtype=object)
        missing = pd.isna(raw)
        text = raw.astype(str).astype(object)
        text[missing] = np.nan
        return text, missing

    for col in schema.categorical:
        if (read := as_text(col)) is None:
            continue
        text, missing = read
        known = frozenset(schema.categories.get(col, ()))
        unseen = np.fromiter((not m and t not in known for t, m in zip(text, missing)), dtype=bool, count=n)
        if unseen.any():
            where = np.flatnonzero(unseen)
            issues.append(Issue(col, _UNSEEN, tuple(int(i) for i in where), example=text[where[0]], fatal=False))
        arrays[col] = text
    for col in schema.text:
        if (read := as_text(col)) is not None:
            arrays[col] = read[0]
    used = {*schema.numeric, *schema.categorical, *schema.dates, *schema.text}
    ignored = [str(c) for c in rows.columns if c not in used]
    issues.sort(key=lambda i: i.problem != _MISSING_COLUMN)  # a missing column first: it explains the most
    fatal = [i for i in issues if i.fatal]
    if fatal and policy == STRICT:
        raise InvalidRows(_strict_message(fatal, n), fatal, hint=", or use the coerce policy to impute them")
    warnings: list[Optional[str]] = [None] * n
    if policy == COERCE:
        per_row: list[list[str]] = [[] for _ in range(n)]
        for issue in issues:
            note = f"{issue.column}: {issue.problem}" + ("" if not issue.fatal else ", imputed")
            for r in issue.rows:
                per_row[r].append(note)
        warnings = ["; ".join(w) if w else None for w in per_row]
        if fatal:
            log.warning("coerce: %d of %d rows had values that could not be used as given (imputed): %s",
                        len({r for i in fatal for r in i.rows}), n,
                        "; ".join(f"{i.column} ({i.problem}: {len(i.rows)})" for i in fatal))
    return CheckedRows(arrays={c: arrays[c] for c in schema.columns}, index=rows.index, issues=issues,
                       ignored=ignored, warnings=warnings)


def _strict_message(issues: list[Issue], n_rows: int) -> str:
    first = issues[0]
    fix = _FIX.get(first.problem, "")
    more = f" (and {len(issues) - 1} more problem{'s' if len(issues) > 2 else ''}: " + \
        ", ".join(f"{i.column} {i.problem}" for i in issues[1:4]) + ("..." if len(issues) > 4 else "") + ")" \
        if len(issues) > 1 else ""
    return f"{first.describe(n_rows)}{more}: {fix}"


# ---------------------------------------------------------------------------------------------------------
# Scores out
# ---------------------------------------------------------------------------------------------------------


def finite_rows(scores: "np.ndarray") -> "np.ndarray":
    """True per row whose probabilities (every class) or value are finite."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    return np.isfinite(s).all(axis=1) if s.ndim == 2 else np.isfinite(s)


def check_scores(scores: "np.ndarray", checked: CheckedRows, policy: str = STRICT) -> "np.ndarray":
    """The rows whose scores are finite. Strict refuses any other; coerce warns on them (no label follows)."""
    import numpy as np

    finite = finite_rows(scores)
    if finite.all():
        return finite
    bad = tuple(int(i) for i in np.flatnonzero(~finite))
    issue = Issue(OUTPUT, "the model's output is not finite (an input far beyond the training range?)", bad)
    if policy == STRICT:
        raise InvalidRows(f"{issue.describe(len(finite))}: check those rows' numbers", [issue],
                          hint=", or use the coerce policy to get them back without a label")
    for r in bad:
        note = "output not finite: no label"
        checked.warnings[r] = f"{checked.warnings[r]}; {note}" if checked.warnings[r] else note
    log.warning("coerce: %d of %d rows have a non-finite output and get no label", len(bad), len(finite))
    return finite


def decide_labels(scores: "np.ndarray", schema: InputSchema) -> "np.ndarray":
    """Labels from scores by the predictor's rule: binary P(positive) >= threshold, multiclass the most probable
    class, regression the value itself. A row whose scores are not finite gets None, never a label.

    Binary `scores` are P(positive) (n,); multiclass the (n, classes) probabilities in `schema.classes` order.
    """
    import numpy as np

    finite = finite_rows(scores)
    if schema.task == REGRESSION:
        return np.asarray(scores)
    classes = np.asarray(schema.classes, dtype=object)
    if schema.task == BINARY:
        negative = next(c for c in schema.classes if c != schema.positive_class)
        threshold = 0.5 if schema.threshold is None else schema.threshold
        labels = np.where(np.asarray(scores) >= threshold, schema.positive_class, negative)
    elif schema.task == MULTICLASS:
        labels = classes[np.nan_to_num(np.asarray(scores), nan=-1.0).argmax(axis=1)]
    else:  # pragma: no cover - a tabular schema has one of the three tasks
        raise DataError(f"task {schema.task!r} has no labelling rule")
    if not finite.all():
        labels = labels.astype(object)
        labels[~finite] = None
    return labels
