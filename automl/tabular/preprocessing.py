"""Tabular preprocessing: fitted by scikit-learn on the training rows only, kept as plain JSON.

Numeric columns: median imputation with missing-value indicators, then standard scaling. Date columns
(`dates`): calendar features read from the raw dates (datetime64 or text, parsed with the format found at
fit) - year, month, day of month, day of week, the hour when training dates have times, and days since
`DATE_ORIGIN` - then imputed and scaled like numeric columns. Categorical columns: ordinal codes where 0
means missing, unseen or rare: a category seen fewer than `MIN_CATEGORY_COUNT` times in training has no code
and is not in the state at all (a high-cardinality column's one-off values are never written to the run
directory), and training rows are transformed through the same state, so rare and unseen agree.
Models receive two arrays: `x_num` (float32: the numeric values, then each date's features, then the
missing-value indicators) and `x_cat` (int64 codes, one column per categorical feature).

scikit-learn fits the transformers; their fitted parameters (medians, indicator columns, means, scales,
category codes) are then read out into `state`, a JSON-able dict, and every transform, during the run and
after `automl.load`, applies that state. One transform, readable in `predictor/preprocessing.json`, no
pickle, and no import of a persistence library on the way (skops costs 1.3-2.3 s to import here).
`tests/test_data.py` checks the state's transform against scikit-learn's own.

State format: 1 without date columns; 2 adds `dates` ([{"column", "format", "parts"}]), and then `medians`,
`mean`, `scale` and `indicators` cover the numeric columns followed by every date's parts (`value_columns`).
A state without dates is written as format 1, which it is exactly, so readers of format 1 keep reading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

#: Categories seen fewer times than this in training get no code of their own (0, like unseen ones).
MIN_CATEGORY_COUNT = 2
FORMAT = 2
#: States without date columns are this (older) format exactly.
FORMATS = (1, 2)
#: Calendar features of a date column, in `x_num` order; "hour" only when training dates have times.
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "days")


class TabularPreprocessor:
    """Fit with `fit(frame)`; transform with `transform(frame)`; persist with `state` / `from_state`."""

    def __init__(self, numeric: list[str], categorical: list[str], dates: Sequence[str] = ()) -> None:
        self.numeric, self.categorical, self.dates = list(numeric), list(categorical), list(dates)
        #: Per date column: {"column", "format", "parts"}, found at fit (or read from the state).
        self.date_specs: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}

    # -- fitting (scikit-learn) --------------------------------------------------------------------------

    def fit(self, frame: "pd.DataFrame") -> "TabularPreprocessor":
        from sklearn.compose import ColumnTransformer

        self.date_specs = [_date_spec(frame[c], c) for c in self.dates]
        self.transformer = ColumnTransformer(
            [("num", self._numeric_pipeline(), self.value_columns), ("cat", self._encoder(), self.categorical)],
            remainder="drop", sparse_threshold=0.0,
        )
        self.transformer.fit(self._typed(frame))
        self.state = self._read_state()
        return self

    @staticmethod
    def _numeric_pipeline() -> Any:
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # keep_empty_features: a column missing in every training row stays a (constant) column
        return make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                             StandardScaler())

    @staticmethod
    def _encoder() -> Any:
        from sklearn.preprocessing import OrdinalEncoder

        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1,
                              min_frequency=MIN_CATEGORY_COUNT)

    def _read_state(self) -> dict[str, Any]:
        import pandas as pd

        state: dict[str, Any] = {"format": FORMAT if self.dates else 1, "numeric": self.numeric,
                                 "categorical": self.categorical}
        if self.dates:
            state["dates"] = self.date_specs
        if self.value_columns:
            imputer, scaler = self.transformer.named_transformers_["num"].steps[0][1], \
                self.transformer.named_transformers_["num"].steps[1][1]
            indicator = imputer.indicator_
            state.update(
                medians=imputer.statistics_.tolist(),
                indicators=[int(i) for i in indicator.features_] if indicator is not None else [],
                mean=scaler.mean_.tolist(),
                scale=scaler.scale_.tolist(),
            )
        if self.categorical:
            # Read the codes back from the fitted encoder itself: transform every frequent category once. Rare ones
            # (the encoder's infrequent code) are left out: they map to 0, and their values are never stored.
            encoder = self.transformer.named_transformers_["cat"]
            rare = [set(r) if r is not None else set() for r in encoder.infrequent_categories_]
            known = [[c for c in cats if not pd.isna(c) and c not in rare[j]]
                     for j, cats in enumerate(encoder.categories_)]
            rows = max(1, max(len(k) for k in known))
            probe = pd.DataFrame({col: (k + k[:1] * (rows - len(k))) if k else [None] * rows
                                  for col, k in zip(self.categorical, known)}, dtype=object)
            out = encoder.transform(probe)
            # +1: code 0 is missing, unseen or rare (the encoder's -1)
            state["codes"] = [{str(v): int(out[i, j]) + 1 for i, v in enumerate(k)} for j, k in enumerate(known)]
        return state

    # -- transforming (the fitted state) -----------------------------------------------------------------

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TabularPreprocessor":
        if state.get("format") not in FORMATS:
            from automl.errors import AutoMLError

            raise AutoMLError(f"preprocessing format {state.get('format')} is not supported (expects one of "
                              f"{', '.join(map(str, FORMATS))}): update automl")
        specs = list(state.get("dates", []))
        self = cls(state["numeric"], state["categorical"], [d["column"] for d in specs])
        self.date_specs, self.state = specs, state
        return self

    def transform(self, frame: "pd.DataFrame") -> tuple["np.ndarray", "np.ndarray"]:
        import numpy as np

        missing = [c for c in self.numeric + self.dates + self.categorical if c not in frame.columns]
        if missing:
            from automl.errors import DataError

            raise DataError(f"input rows lack the column(s) {', '.join(missing)} the model was trained on")
        typed, st, n = self._typed(frame), self.state, len(frame)
        if self.value_columns:
            x = typed[self.value_columns].to_numpy(dtype=np.float64)
            absent = np.isnan(x)
            x = np.where(absent, np.asarray(st["medians"]), x)
            x = np.concatenate([x, absent[:, st["indicators"]].astype(np.float64)], axis=1)
            x_num = ((x - np.asarray(st["mean"])) / np.asarray(st["scale"])).astype(np.float32)
        else:
            x_num = np.zeros((n, 0), dtype=np.float32)
        x_cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            x_cat[:, j] = typed[col].map(st["codes"][j]).fillna(0).to_numpy(dtype=np.int64)
        return np.ascontiguousarray(x_num), x_cat

    def _typed(self, frame: "pd.DataFrame") -> "pd.DataFrame":
        """Numeric columns as float, dates as their calendar features, categorical as text (a CSV may read '01'
        as 1 in one file, not another)."""
        import pandas as pd

        cols = {}
        for c in self.numeric:
            cols[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        for spec in self.date_specs:
            cols.update(_date_features(frame[spec["column"]], spec))
        for c in self.categorical:
            s = frame[c]
            cols[c] = s.where(s.isna(), s.astype(str)).astype(object)
        return pd.DataFrame(cols, index=frame.index)

    @property
    def value_columns(self) -> list[str]:
        """The columns of `x_num`'s values, in order: the numeric columns, then "DATE.PART" per date feature."""
        return self.numeric + [f"{d['column']}.{p}" for d in self.date_specs for p in d["parts"]]

    @property
    def n_indicators(self) -> int:
        """Missing-value indicator columns, after the numeric values in `x_num`."""
        return len(self.state.get("indicators", []))

    @property
    def n_numeric_out(self) -> int:
        return len(self.state.get("mean", []))

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Embedding table sizes per categorical column: the largest code + 1 (code 0 = unknown)."""
        return tuple(max(codes.values(), default=0) + 1 for codes in self.state.get("codes", []))


def _date_spec(values: "pd.Series", column: str) -> dict[str, Any]:
    """How to read a date column at prediction time, from its training values: the text format (ISO 8601 for
    datetime64 columns, whose values reach a served model as ISO text) and the parts worth computing."""
    import pandas as pd

    from automl.data.checks import date_format, parse_dates

    fmt = "ISO8601" if pd.api.types.is_datetime64_any_dtype(values) else (date_format(values) or "ISO8601")
    dates = parse_dates(values, fmt)
    timed = bool((dates.dropna() != dates.dropna().dt.normalize()).any())
    parts = [p for p in DATE_PARTS if p != "hour" or timed]
    return {"column": column, "format": fmt, "parts": parts}


def _date_features(values: "pd.Series", spec: dict[str, Any]) -> dict[str, "pd.Series"]:
    """The calendar features of one date column, as float (NaN where the date is missing or does not parse)."""
    import pandas as pd

    from automl.data.checks import DATE_ORIGIN, parse_dates

    dates = parse_dates(values, spec["format"])
    compute = {
        "year": lambda: dates.dt.year, "month": lambda: dates.dt.month, "day": lambda: dates.dt.day,
        "weekday": lambda: dates.dt.day_of_week, "hour": lambda: dates.dt.hour,
        "days": lambda: (dates - pd.Timestamp(DATE_ORIGIN)) / pd.Timedelta(days=1),
    }
    return {f"{spec['column']}.{p}": compute[p]().astype("float64") for p in spec["parts"]}
