"""Validate a table, pick the task, and separate features, target and side columns.

Every rejection is a one-line `DataError` that names the column (and the rows, counted from 0 in the table as
given) and says how to fix it: duplicated column names, inf in a numeric column, text that does not parse in a
column of numbers or dates, a column that mixes numbers and text, too few rows to fit and test. Rows whose
target is missing are dropped and counted in the log.

Each feature column gets a kind: numeric, categorical or date (datetime64, or text that parses as dates; the
preprocessor turns it into calendar features). Columns that are not features are removed here, before anything
is fitted, so they never reach a model or the run directory: identifiers (declared, or a different value in
every row), each logged and listed in `CheckedTable.dropped` with the reason. Free text is a kind of its own:
columns named in `data.text_columns`, or detected (`is_free_text`: long, mostly distinct strings; the log says
which and why), are kept as text (`CheckedTable.text`) for a text encoder (`automl.text`), never as categories.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

from automl.data.identifiers import refuse_direct_identifiers
from automl.errors import DataError
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from automl.pipeline import Table

log = logging.getLogger(__name__)

_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|mrn|ssn|nhs|name|email|phone|patient|account_?number)($|_)", re.I)
#: An integer target with at most this many distinct values is treated as classes.
MAX_INT_CLASSES = 10
#: Fewer rows with a target than this cannot be split into train, validation and test rows that mean anything.
MIN_ROWS = 30
#: A class needs this many rows to reach both sides of the stratified splits (with 2, a split fails often).
MIN_CLASS_ROWS = 3
#: A test split smaller than this gives metrics too noisy to report without a warning.
MIN_TEST_ROWS = 30
#: A text column is read as numbers (or dates) when at least this share of its values parse as such: the rest
#: are then mistakes to fix, named by row, not a reason to treat the column as categories.
PARSE_SHARE = 0.9
#: Row numbers a message names before it says "and N more".
SHOWN_ROWS = 5
#: Free text: at least this many values, mostly distinct (share), of at least this many words (median).
FREE_TEXT_MIN_VALUES, FREE_TEXT_DISTINCT, FREE_TEXT_WORDS = 20, 0.5, 3
#: Where a date column's "days" feature counts from.
DATE_ORIGIN = "1970-01-01"


@dataclass
class CheckedTable:
    features: "pd.DataFrame"
    target: "pd.Series"
    task: str
    numeric: list[str]
    categorical: list[str]
    #: Date columns (datetime64, or text that parses as dates): the preprocessor derives calendar features.
    dates: list[str] = field(default_factory=list)
    #: Free-text columns (declared in data.text_columns, or detected): read by a text encoder, never categories.
    text: list[str] = field(default_factory=list)
    classes: Optional[list[Any]] = None
    positive_class: Any = None
    side: dict[str, "pd.Series"] = field(default_factory=dict)  # sensitive attributes, aligned with rows
    groups: Optional["pd.Series"] = None  # split groups, aligned with rows, never a feature
    dropped_rows: int = 0
    #: Every column of the table that is not a feature, with the reason.
    dropped: dict[str, str] = field(default_factory=dict)


def check_table(table: "Table", text_columns: Sequence[str] = ()) -> CheckedTable:
    """The checked table; `text_columns` (data.text_columns) are text whatever detection says."""
    import numpy as np

    df = table.frame
    where = f"table {table.name!r}"
    if not table.target:
        raise DataError(
            f"no target column given for {table.name}: set data.target=COLUMN "
            f"(columns: {', '.join(map(str, df.columns[:30]))})"
        )
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataError(f"{where} is empty ({df.shape[0]} rows, {df.shape[1]} columns): it needs rows and a target")
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    _require_unique_columns(df, where)
    _require_column(df, table.target, "data.target", where)

    for col, reason in table.drop_columns.items():
        if col in df.columns:
            log.info("dropping column %s: %s", col, reason)
    unknown = [c for c in table.id_columns if c not in df.columns]
    if unknown:
        raise DataError(f"data.id_columns names {unknown[0]!r}, which is not a column of {where}: "
                        f"columns are {_columns(df)}")
    for col in table.sensitive:
        _require_column(df, col, "data.sensitive", where)
    if table.group_column:
        _require_column(df, table.group_column, "data.group_column", where)
        if df[table.group_column].isna().any():
            raise DataError(f"data.group_column={table.group_column!r} is missing in some rows: every row needs "
                            "a group to be split honestly")
    if table.target in table.id_columns or table.target in table.sensitive:
        raise DataError(f"the target {table.target!r} cannot also be an identifier or sensitive column")

    y = df[table.target]
    if y.isna().all():
        raise DataError(f"target {table.target!r} of {where} is missing in every row: choose another data.target")
    rows = np.arange(len(df))  # each kept row's number in the table as given, for messages
    missing = int(y.isna().sum())
    if missing:
        log.info("dropped %d of %d rows whose target %r is missing", missing, len(df), table.target)
        rows = rows[y.notna().to_numpy()]
        df = df.loc[y.notna()].reset_index(drop=True)
        y = df[table.target]

    task = _task(y, table.task, table.target)
    classes, positive = None, None
    if task in (BINARY, MULTICLASS):
        classes = sorted(y.unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise DataError(
                f"target {table.target!r} has a single class ({classes[0]!r}) after dropping missing values: "
                "a classifier needs at least two classes"
            )
        if task == BINARY and len(classes) != 2:
            raise DataError(f"target {table.target!r} has {len(classes)} classes, so the task cannot be binary: "
                            "set domain.task=multiclass")
        if task == BINARY:
            positive = _positive_class(y, classes, table.positive_class, table.target)

    side = {c: df[c].reset_index(drop=True) for c in table.sensitive}
    groups = df[table.group_column].reset_index(drop=True) if table.group_column else None
    reasons = {c: why for c, why in table.drop_columns.items() if c in df.columns}
    reasons.update({c: "identifier: never a feature, never written to the run directory" for c in table.id_columns})
    if not table.sensitive_is_feature:  # by default a model never sees a protected attribute
        reasons.update({c: "sensitive attribute: reported on, not learned (data.sensitive_is_feature=true to "
                           "learn from it)" for c in table.sensitive})
        for c in table.sensitive:
            log.info("sensitive attribute %r is not a feature: the model never sees it; fairness is reported on "
                     "it (data.sensitive_is_feature=true to learn from it)", c)
    elif table.sensitive:
        log.info("sensitive attribute(s) %s are features (data.sensitive_is_feature=true) and reported on",
                 ", ".join(map(repr, table.sensitive)))
    if table.group_column:
        reasons[table.group_column] = "groups the split: rows sharing it stay on one side"
    reasons[table.target] = "the target"
    drop = set(reasons)
    features = df[[c for c in df.columns if c not in drop]]
    refuse_direct_identifiers(features, where)  # e-mails, phones, card numbers...: before anything is fitted
    if features.shape[1] == 0:
        raise DataError(f"{where} has no feature columns left after dropping the target and "
                        f"{sorted(drop - {table.target})}")
    kinds = _column_kinds(features, where, rows, _declared_text(features, text_columns, drop, where))
    left_out = _not_features(features, kinds)
    reasons.update(left_out)
    features = features[[c for c in features.columns if c not in left_out]]
    if features.shape[1] == 0:
        why = "; ".join(f"{c} ({reason})" for c, reason in left_out.items())
        raise DataError(f"{where} has no feature columns left: {why}")
    return CheckedTable(
        features=features.reset_index(drop=True),
        target=y.reset_index(drop=True),
        task=task,
        numeric=[c for c in kinds.numeric if c not in left_out],
        categorical=[c for c in kinds.categorical if c not in left_out],
        dates=[c for c in kinds.dates if c not in left_out],
        text=[c for c in kinds.text if c not in left_out],
        classes=classes,
        positive_class=positive,
        side=side,
        groups=groups,
        dropped_rows=missing,
        dropped=reasons,
    )


def check_fit_size(checked: CheckedTable, target: str, where: str) -> None:
    """Enough rows, and rows of every class, for train / validation / test splits that mean something."""
    n = len(checked.target)
    if n < MIN_ROWS:
        after = f" (after dropping {checked.dropped_rows} without one)" if checked.dropped_rows else ""
        raise DataError(f"{where} has {n} rows with a target{after}: at least {MIN_ROWS} are needed to train, "
                        f"validate and test a model honestly; add {MIN_ROWS - n} or more rows")
    if checked.classes is not None:
        counts = checked.target.value_counts()
        rare = counts[counts < MIN_CLASS_ROWS]
        if len(rare):
            shown = ", ".join(f"{c!r} ({k} row{'s' if k > 1 else ''})" for c, k in rare.items())
            raise DataError(f"target {target!r} has too few rows of class(es) {shown}: every class needs at least "
                            f"{MIN_CLASS_ROWS} to reach the training and validation splits; add rows of it, merge "
                            "it into another class, or drop its rows")


def warn_small_test(n_test: int, test_size: float) -> None:
    """Metrics on a handful of test rows are noise: say so (no test rows at all is the user's choice)."""
    if 0 < n_test < MIN_TEST_ROWS:
        log.warning("the test split has only %d rows (data.test_size=%s): its metrics are unreliable (about %d "
                    "are needed); use more data or a larger data.test_size", n_test, test_size, MIN_TEST_ROWS)


def _require_unique_columns(df: "pd.DataFrame", where: str) -> None:
    dup = df.columns[df.columns.duplicated()].unique().tolist()
    if dup:
        raise DataError(f"{where} has duplicated column name(s) {', '.join(map(repr, dup[:10]))}: every column "
                        "needs its own name; rename or drop the copies")


def _columns(df: "pd.DataFrame", limit: int = 40) -> str:
    cols = list(map(str, df.columns))
    more = f" ... (+{len(cols) - limit} more)" if len(cols) > limit else ""
    return ", ".join(cols[:limit]) + more


def _require_column(df: "pd.DataFrame", col: str, key: str, where: str) -> None:
    if col not in df.columns:
        close = difflib.get_close_matches(col, list(df.columns), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{key}={col!r} is not a column of {where}.{hint} Columns: {_columns(df)}")


def _task(y: "pd.Series", declared: Optional[str], target: str) -> str:
    import pandas as pd

    if declared:
        task = declared
    elif pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        task = BINARY if y.nunique() <= 2 else MULTICLASS
    elif y.nunique() <= 2:
        task = BINARY
    elif pd.api.types.is_integer_dtype(y) or (y % 1 == 0).all():
        task = MULTICLASS if y.nunique() <= MAX_INT_CLASSES else REGRESSION
        if task == MULTICLASS:
            log.info("target %r has %d integer values: treated as classes (set domain.task=regression to "
                     "predict it as a number)", target, y.nunique())
    else:
        task = REGRESSION
    if task == REGRESSION and not pd.api.types.is_numeric_dtype(y):
        raise DataError(f"target {target!r} is not numeric, so it cannot be a regression target")
    return task


def _positive_class(y: "pd.Series", classes: list[Any], wanted: Any, target: str) -> Any:
    if wanted is not None:
        for c in classes:
            if c == wanted or str(c) == str(wanted):
                return c
        raise DataError(f"positive class {wanted!r} is not a value of target {target!r}: values are "
                        f"{', '.join(map(repr, classes))} (set data.positive_class=...)")
    as_text = {str(c).lower() for c in classes}
    for pair, pos in (({"0", "1"}, "1"), ({"false", "true"}, "true"), ({"0.0", "1.0"}, "1.0"),
                      ({"no", "yes"}, "yes")):
        if as_text == pair:
            return next(c for c in classes if str(c).lower() == pos)
    counts = y.value_counts()
    positive = counts.idxmin()
    log.info("positive class of %r: %r (the minority class; set data.positive_class to choose)", target, positive)
    return positive


@dataclass
class _Kinds:
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def _declared_text(features: "pd.DataFrame", columns: Sequence[str], dropped: set[str], where: str) -> list[str]:
    """`data.text_columns`, checked: columns of the table holding strings (missing values allowed)."""
    import pandas as pd

    out = []
    for col in columns:
        if col in dropped:
            continue  # dropped on purpose (data.drop_columns, an identifier): the user's later word wins
        if col not in features.columns:
            _require_column(features, col, "data.text_columns", where)
        s = features[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or \
                pd.api.types.is_datetime64_any_dtype(s):
            raise DataError(f"data.text_columns names {col!r}, which holds {s.dtype} values, not text: name columns "
                            "of strings, or leave it out of data.text_columns")
        out.append(col)
    return out


def _column_kinds(features: "pd.DataFrame", where: str, rows: "np.ndarray", text: Sequence[str] = ()) -> _Kinds:
    """Each column's kind, refusing values a fit cannot use (`rows`: each row's number in the table as given);
    `text`: columns declared as text."""
    import pandas as pd

    kinds, bad = _Kinds(text=list(text)), []
    for col in features.columns:
        s = features[col]
        if col in kinds.text:
            continue
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s):
            _require_finite(s, col, rows)
            kinds.numeric.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s):
            kinds.dates.append(col)
        elif isinstance(s.dtype, pd.CategoricalDtype):
            kinds.categorical.append(col)
        elif pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype):
            kind = _text_kind(s, col, rows)
            if kind is None:
                bad.append(f"{col} ({s.dtype})")
            else:
                getattr(kinds, kind).append(col)
        else:
            bad.append(f"{col} ({s.dtype})")
    if bad:
        raise DataError(
            f"{where} has columns of unsupported types: {', '.join(bad)}. Convert them to numbers, dates or text, "
            "or drop them with data.drop_columns=[...]"
        )
    return kinds


def _text_kind(s: "pd.Series", col: str, rows: "np.ndarray") -> Optional[str]:
    """The kind of an object or string column: "numeric" when its values are numbers (or nearly all parse as
    numbers: the others are then an error naming the rows), "dates" likewise for dates, else "categorical";
    None for values that are not scalars (lists, dicts...)."""
    import datetime

    import numpy as np
    import pandas as pd

    present = s.notna().to_numpy()
    values = s[present]
    if values.empty:
        return "categorical"
    at = rows[present]
    if pd.api.types.infer_dtype(values, skipna=True) == "string":  # the usual case, without a Python loop
        kind = np.full(len(values), "text", dtype=object)
    else:
        kind = values.map(lambda v: "text" if isinstance(v, str) else "date" if isinstance(
            v, (datetime.date, np.datetime64)) else "number" if isinstance(v, (int, float, np.number, np.bool_))
            else "other").to_numpy()
    if (kind == "other").any():
        return None
    text = kind == "text"
    if (kind == "date").any():
        if (kind == "date").all():
            return "dates"
        _mixed(col, "dates", at[kind == "date"], "other values", at[kind != "date"])
    codes, uniques = pd.factorize(values)  # parse each distinct value once (categories repeat a lot)
    numbers = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)[codes]
    parsed = ~np.isnan(numbers)
    if parsed.all():
        if text.all():  # numeric-looking text codes ("01", "415"): categories, as given
            return "categorical"
        _require_finite(pd.Series(numbers), col, at)
        return "numeric"
    if parsed.mean() >= PARSE_SHARE:
        bad = ~parsed
        raise DataError(f"column {col!r} holds numbers, but not in {_rows_text(at[bad])}: text that is not a "
                        f"number ({_example(values[bad].iloc[0])}); replace those values with numbers or missing "
                        "values (empty), or drop those rows")
    if not text.all():
        _mixed(col, "numbers or booleans", at[~text], "text", at[text])
    fmt = date_format(values)
    if fmt is not None:
        dates = parse_dates(values, fmt)
        ok = dates.notna().to_numpy()
        if ok.mean() >= PARSE_SHARE:
            if not ok.all():
                raise DataError(f"column {col!r} holds dates, but not in {_rows_text(at[~ok])}: text that does "
                                f"not parse as a date like the others ({_example(values[~ok].iloc[0])}); fix those "
                                "values or make them missing (empty), or drop those rows")
            return "dates"
    return "categorical"


def _mixed(col: str, kind: str, these: "np.ndarray", other: str, others: "np.ndarray") -> None:
    raise DataError(f"column {col!r} mixes types: {kind} in {_rows_text(these)}, {other} in {_rows_text(others)}; "
                    f"a column holds one type: convert it (all {kind.split()[0]}, or all text for a category) or fix "
                    "those rows")


def _require_finite(s: "pd.Series", col: str, rows: "np.ndarray") -> None:
    """inf, -inf and numbers past float32's range (the networks' inputs) cannot be imputed or scaled."""
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (np.abs(values) > np.finfo(np.float32).max)
    if bad.any():
        raise DataError(f"column {col!r} holds infinite numbers (inf, -inf, or past float32's range) in "
                        f"{_rows_text(rows[bad])}: replace them with missing values (NaN) or finite numbers, or "
                        "drop those rows")


def _rows_text(rows: "np.ndarray") -> str:
    shown = ", ".join(str(int(r)) for r in rows[:SHOWN_ROWS])
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more} (from 0)"


def _example(value: Any) -> str:
    """One offending value, short (rows may hold personal data: never more than one)."""
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


# -- dates --------------------------------------------------------------------------------------------------


def date_format(values: "pd.Series") -> Optional[str]:
    """The format text dates are written in ("ISO8601" for ISO dates and times, else a strftime format guessed
    from the first values), or None when the values do not look like dates (a month and a day, or a month)."""
    from collections import Counter

    from pandas.tseries.api import guess_datetime_format

    guesses: Counter[str] = Counter()
    for v in values.dropna().astype(str).head(50).unique():
        if any(ch.isdigit() for ch in v) and (fmt := guess_datetime_format(v.strip())) is not None:
            guesses[fmt] += 1
    if not guesses:
        return None
    fmt = guesses.most_common(1)[0][0]
    if not any(d in fmt for d in ("%m", "%b", "%B")):  # a bare year or time is a number, not a date
        return None
    return "ISO8601" if fmt.startswith("%Y-%m") else fmt


def parse_dates(values: "pd.Series", fmt: str) -> "pd.Series":
    """Dates as naive UTC datetimes (NaT where a value is missing or does not parse): datetime64 columns as they
    are (time zones converted to UTC), text by `fmt`. Fit and prediction both read dates through here."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values, utc=True)
    else:
        import warnings

        with warnings.catch_warnings():  # a value that does not parse is NaT, counted by the caller
            warnings.simplefilter("ignore")
            out = pd.to_datetime(values.astype(object), format=fmt, errors="coerce", utc=True)
    return out.dt.tz_localize(None)


# -- columns that are not features ----------------------------------------------------------------------------


def is_free_text(series: "pd.Series") -> bool:
    """Prose rather than a category: text values that are mostly distinct and made of several words (comments,
    descriptions, addresses). Codes each seen once teach a model nothing and would be stored verbatim."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series) or \
            pd.api.types.is_bool_dtype(series):
        return False
    values = series.dropna()
    if len(values) < FREE_TEXT_MIN_VALUES or values.nunique() < FREE_TEXT_DISTINCT * len(values) or \
            pd.api.types.infer_dtype(values, skipna=True) != "string":
        return False
    if len(values) > 10_000:
        values = values.sample(10_000, random_state=0)
    return values.astype(str).str.split().str.len().median() >= FREE_TEXT_WORDS


def _detect_text(features: "pd.DataFrame", kinds: _Kinds) -> dict[str, str]:
    """Move free text out of the categorical columns into `kinds.text`, saying which columns and why; free text
    named like an identifier (a "name" column of prose is still people's names) is left out instead."""
    out: dict[str, str] = {}
    for col in list(kinds.categorical):
        s = features[col]
        if not is_free_text(s):
            continue
        kinds.categorical.remove(col)
        if _ID_NAME.search(col):
            out[col] = ("free text named like an identifier: left out (data.text_columns=[...] reads it as text if "
                        "it is not personal data)")
            log.info("dropping column %s: %s", col, out[col])
        else:
            values = s.dropna().astype(str)
            words = float(values.str.split().str.len().median())
            kinds.text.append(col)
            log.info("column %s is free text (%d of %d values distinct, %.0f words at the median): kept as text for "
                     "a text encoder, not as a category (data.drop_columns=[%s] leaves it out)", col,
                     values.nunique(), len(values), words, col)
    return out


def _not_features(features: "pd.DataFrame", kinds: _Kinds) -> dict[str, str]:
    """Identifier-like columns: dropped (logged), with the reason for `CheckedTable.dropped`. Free text is
    moved into `kinds.text` first (`_detect_text`): prose differs in every row without identifying anyone."""
    import pandas as pd

    n = len(features)
    out = _detect_text(features, kinds)
    if n < 20:
        return out
    for col in features.columns:
        s = features[col]
        if col in out or col in kinds.dates or col in kinds.text or s.nunique(dropna=True) != n:
            continue
        named = bool(_ID_NAME.search(col))
        integer = pd.api.types.is_integer_dtype(s)
        counter = integer and int(s.max()) - int(s.min()) == n - 1  # 1..n: a row number
        # A measured number can differ in every row (a weight, an amount): only codes, row numbers and
        # non-float columns named like identifiers are dropped; the others are named in a warning.
        if col in kinds.categorical or counter or (named and not pd.api.types.is_float_dtype(s)):
            out[col] = "identifier-like: a different value in every row (data.id_columns=[...] to say so)"
            log.warning("column %r has a different value in every row and looks like a direct identifier: dropped, "
                        "so it never reaches the model (list it in data.id_columns=[%s] to say so)", col, col)
        elif named or integer:
            log.warning("column %r is a number with a different value in every row: kept as a feature; if it is "
                        "an identifier, drop it with data.id_columns=[%s]", col, col)
    return out
