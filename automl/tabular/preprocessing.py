"""Tabular preprocessing by scikit-learn, fitted on the training rows only, persisted without pickle.

Numeric columns: median imputation with missing-value indicators, then standard scaling. Categorical
columns: most-frequent-free ordinal codes where 0 means missing, unseen or rare, so a category never seen in
training is harmless at prediction time. Models receive two arrays: `x_num` (float32) and `x_cat` (int64
codes, one column per categorical feature) and embed the codes themselves.

The fitted transformer is saved with skops (a zip of JSON and arrays); loading accepts only the
scikit-learn types listed in `TRUSTED_TYPES`, so a tampered file cannot execute code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

#: Everything a saved preprocessor may contain. Anything else in a file is refused at load.
TRUSTED_TYPES = (
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.impute._base.MissingIndicator",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "builtins.slice",
    "builtins.object",
    "builtins.str",
    "builtins.float",
    "builtins.int",
)

#: Categories seen fewer times than this in training share the "rare" code with unseen ones.
MIN_CATEGORY_COUNT = 2


class TabularPreprocessor:
    """A fitted ColumnTransformer plus the column lists it was fitted on."""

    def __init__(self, numeric: list[str], categorical: list[str]) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OrdinalEncoder, StandardScaler

        self.numeric, self.categorical = list(numeric), list(categorical)
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1,
            min_frequency=MIN_CATEGORY_COUNT, dtype="float64",
        )
        self.num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        self.cat = encoder
        self.transformer = ColumnTransformer(
            [("num", self.num, self.numeric), ("cat", self.cat, self.categorical)],
            remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False,
        )

    def fit(self, frame: "pd.DataFrame") -> "TabularPreprocessor":
        self.transformer.fit(self._typed(frame))
        return self

    def transform(self, frame: "pd.DataFrame") -> tuple["np.ndarray", "np.ndarray"]:
        import numpy as np

        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            from automl.errors import DataError

            raise DataError(f"input rows lack the column(s) {', '.join(missing)} the model was trained on")
        out = self.transformer.transform(self._typed(frame))
        n_num = self.n_numeric_out
        x_num = np.ascontiguousarray(out[:, :n_num], dtype=np.float32)
        # OrdinalEncoder: -1 for missing/unknown; infrequent categories get the last code. Shift so 0 = unknown.
        x_cat = np.ascontiguousarray(out[:, n_num:] + 1, dtype=np.int64)
        return x_num, x_cat

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
        if not self.numeric:
            return 0
        return len(self.transformer.named_transformers_["num"].get_feature_names_out())

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Embedding table sizes per categorical column: categories (+ rare bucket) + 1 for unknown."""
        if not self.categorical:
            return ()
        import pandas as pd

        enc = self.transformer.named_transformers_["cat"]
        sizes = []
        for i, cats in enumerate(enc.categories_):
            known = int((~pd.isna(cats)).sum())  # a missing value is a category to sklearn, code 0 here
            infrequent = enc.infrequent_categories_[i] if hasattr(enc, "infrequent_categories_") else None
            n_codes = known - (len(infrequent) - 1 if infrequent is not None and len(infrequent) else 0)
            sizes.append(n_codes + 1)
        return tuple(sizes)

    # -- persistence -------------------------------------------------------------------------------------

    def save(self, path: str) -> None:
        import skops.io as sio

        sio.dump({"numeric": self.numeric, "categorical": self.categorical, "transformer": self.transformer}, path)

    @classmethod
    def load(cls, path: str) -> "TabularPreprocessor":
        import skops.io as sio

        from automl.errors import AutoMLError

        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:
            raise AutoMLError(
                f"{path} contains types this version does not trust ({', '.join(untrusted)}): it was not written "
                "by automl, or was modified; refusing to load it"
            )
        state = sio.load(path, trusted=list(TRUSTED_TYPES))
        self = cls.__new__(cls)
        self.numeric, self.categorical = state["numeric"], state["categorical"]
        self.transformer = state["transformer"]
        return self
