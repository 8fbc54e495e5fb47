"""Tabular preprocessing: fitted by scikit-learn on the training rows only, kept as plain JSON.

Numeric columns: median imputation with missing-value indicators, then standard scaling. Categorical
columns: ordinal codes where 0 means missing, unseen or rare (fewer than `MIN_CATEGORY_COUNT` training
rows share a code of their own), so a category never seen in training is harmless at prediction time.
Models receive two arrays: `x_num` (float32) and `x_cat` (int64 codes, one column per categorical feature).

scikit-learn fits the transformers; their fitted parameters (medians, indicator columns, means, scales,
category codes) are then read out into `state`, a JSON-able dict, and every transform, during the run and
after `automl.load`, applies that state. One transform, readable in `predictor/preprocessing.json`, no
pickle, and no import of a persistence library on the way (skops costs 1.3-2.3 s to import here).
`tests/test_data.py` checks the state's transform against scikit-learn's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

#: Categories seen fewer times than this in training share one code.
MIN_CATEGORY_COUNT = 2
FORMAT = 1


class TabularPreprocessor:
    """Fit with `fit(frame)`; transform with `transform(frame)`; persist with `state` / `from_state`."""

    def __init__(self, numeric: list[str], categorical: list[str]) -> None:
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.state: dict[str, Any] = {}

    # -- fitting (scikit-learn) --------------------------------------------------------------------------

    def fit(self, frame: "pd.DataFrame") -> "TabularPreprocessor":
        from sklearn.compose import ColumnTransformer

        self.transformer = ColumnTransformer(
            [("num", self._numeric_pipeline(), self.numeric), ("cat", self._encoder(), self.categorical)],
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

        state: dict[str, Any] = {"format": FORMAT, "numeric": self.numeric, "categorical": self.categorical}
        if self.numeric:
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
            # Read the codes back from the fitted encoder itself: transform every known category once.
            encoder = self.transformer.named_transformers_["cat"]
            known = [[c for c in cats if not pd.isna(c)] for cats in encoder.categories_]
            rows = max(1, max(len(k) for k in known))
            probe = pd.DataFrame({col: (k + k[:1] * (rows - len(k))) if k else [None] * rows
                                  for col, k in zip(self.categorical, known)}, dtype=object)
            out = encoder.transform(probe)
            # +1: code 0 is missing or unseen (the encoder's -1)
            state["codes"] = [{str(v): int(out[i, j]) + 1 for i, v in enumerate(k)} for j, k in enumerate(known)]
        return state

    # -- transforming (the fitted state) -----------------------------------------------------------------

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TabularPreprocessor":
        if state.get("format") != FORMAT:
            from automl.errors import AutoMLError

            raise AutoMLError(f"preprocessing format {state.get('format')} is not supported (expects {FORMAT})")
        self = cls(state["numeric"], state["categorical"])
        self.state = state
        return self

    def transform(self, frame: "pd.DataFrame") -> tuple["np.ndarray", "np.ndarray"]:
        import numpy as np

        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            from automl.errors import DataError

            raise DataError(f"input rows lack the column(s) {', '.join(missing)} the model was trained on")
        typed, st, n = self._typed(frame), self.state, len(frame)
        if self.numeric:
            x = typed[self.numeric].to_numpy(dtype=np.float64)
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
        """Numeric columns as float, categorical as text (a CSV may read '01' as 1 in one file, not another)."""
        import pandas as pd

        cols = {}
        for c in self.numeric:
            cols[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        for c in self.categorical:
            s = frame[c]
            cols[c] = s.where(s.isna(), s.astype(str)).astype(object)
        return pd.DataFrame(cols, index=frame.index)

    @property
    def n_numeric_out(self) -> int:
        return len(self.state.get("mean", []))

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Embedding table sizes per categorical column: the largest code + 1 (code 0 = unknown)."""
        return tuple(max(codes.values(), default=0) + 1 for codes in self.state.get("codes", []))
