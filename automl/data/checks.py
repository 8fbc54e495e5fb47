"""Validate a table, pick the task, and separate features, target and side columns.

Every rejection is a one-line `DataError` that names the column and says how to fix it. Rows whose target is
missing are dropped and counted in the log. Identifier columns are removed here, before anything is fitted,
so they can never reach a model or the run directory.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import DataError
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.pipeline import Table

log = logging.getLogger(__name__)

_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|mrn|ssn|nhs|name|email|phone|patient|account_?number)($|_)", re.I)
#: An integer target with at most this many distinct values is treated as classes.
MAX_INT_CLASSES = 10


@dataclass
class CheckedTable:
    features: "pd.DataFrame"
    target: "pd.Series"
    task: str
    numeric: list[str]
    categorical: list[str]
    classes: Optional[list[Any]] = None
    positive_class: Any = None
    side: dict[str, "pd.Series"] = field(default_factory=dict)  # sensitive attributes, aligned with rows
    groups: Optional["pd.Series"] = None  # split groups, aligned with rows, never a feature
    dropped_rows: int = 0
    #: Every column of the table that is not a feature, with the reason.
    dropped: dict[str, str] = field(default_factory=dict)


def check_table(table: "Table") -> CheckedTable:
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
    missing = int(y.isna().sum())
    if missing:
        log.info("dropped %d of %d rows whose target %r is missing", missing, len(df), table.target)
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
    if table.group_column:
        reasons[table.group_column] = "groups the split: rows sharing it stay on one side"
    reasons[table.target] = "the target"
    drop = set(reasons)
    features = df[[c for c in df.columns if c not in drop]]
    if features.shape[1] == 0:
        raise DataError(f"{where} has no feature columns left after dropping the target and {sorted(drop - {table.target})}")
    numeric, categorical = _column_kinds(features, where)
    _warn_identifiers(features, len(features))
    return CheckedTable(
        features=features.reset_index(drop=True),
        target=y.reset_index(drop=True),
        task=task,
        numeric=numeric,
        categorical=categorical,
        classes=classes,
        positive_class=positive,
        side=side,
        groups=groups,
        dropped_rows=missing,
        dropped=reasons,
    )


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


def _column_kinds(features: "pd.DataFrame", where: str) -> tuple[list[str], list[str]]:
    import pandas as pd

    numeric, categorical, bad = [], [], []
    for col in features.columns:
        s = features[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_complex_dtype(s):
            numeric.append(col)
        elif isinstance(s.dtype, pd.CategoricalDtype) or (
                pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype)) and _scalar_strings(s):
            categorical.append(col)
        else:
            bad.append(f"{col} ({s.dtype})")
    if bad:
        raise DataError(
            f"{where} has columns of unsupported types: {', '.join(bad)}. Convert them to numbers or text "
            "(e.g. a date to days since an origin) or drop them with data.drop_columns=[...]"
        )
    return numeric, categorical


def _scalar_strings(s: "pd.Series") -> bool:
    """Object columns must hold text (or missing values), not lists, dicts or mixed objects."""
    values = s.dropna()
    sample = values.iloc[:: max(1, len(values) // 1000)]
    return all(isinstance(v, str) for v in sample)


def _warn_identifiers(features: "pd.DataFrame", n: int) -> None:
    import pandas as pd

    if n < 20:
        return
    for col in features.columns:
        s = features[col]
        unique_per_row = s.nunique(dropna=True) == n
        textual = not pd.api.types.is_numeric_dtype(s)
        if unique_per_row and (_ID_NAME.search(col) or textual or pd.api.types.is_integer_dtype(s)):
            log.warning("column %r has a different value in every row and looks like a direct identifier: "
                        "drop it with data.id_columns=[%s] so it never reaches the model", col, col)
