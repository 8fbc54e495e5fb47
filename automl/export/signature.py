"""`inputs.json`: what an exported graph takes and returns, shipped beside the model file.

It holds the predictor's `InputSchema` (columns, kinds, known categories, target, classes, threshold) and
the graph's inputs in order: `numeric` (float64, NaN for missing) and `categorical` (text, "" for missing)
for ONNX, whose graph maps text to codes itself; `codes` (int64, the preprocessor's category codes, 0 for
missing or unseen) for TorchScript, which cannot take text, so `codes` below is the lookup to apply.

A client needs this file and numpy only (no torch, no automl): `Signature.feeds` builds the ONNX inputs
from checked rows, and a few lines of plain Python can do the same from its JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from automl.errors import AutoMLError
from automl.tasks import REGRESSION
from automl.validation import InputSchema

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

FORMAT = 1
FILE = "inputs.json"
NUMERIC_INPUT, CATEGORICAL_INPUT, CODES_INPUT = "numeric", "categorical", "codes"
#: How the ONNX graph's text input says "missing" (any unknown text is read as missing or unseen, code 0).
MISSING_TEXT = ""


@dataclass(frozen=True)
class Signature:
    schema: InputSchema
    #: Column order of the `numeric` and `categorical` (or `codes`) inputs.
    numeric: list[str]
    categorical: list[str]
    #: The preprocessor's category codes per categorical column (0: missing or unseen).
    codes: dict[str, dict[str, int]]

    @property
    def output(self) -> str:
        return "value" if self.schema.task == REGRESSION else "probabilities"

    @classmethod
    def of(cls, predictor: Any, graph: Any) -> "Signature":
        """From a loaded `TabularPredictor` and the `PredictorGraph` built from it (same column order)."""
        pre = graph.preprocess
        return cls(schema=predictor.schema(), numeric=list(pre.numeric), categorical=list(pre.categorical),
                   codes={c: dict(m) for c, m in zip(pre.categorical, pre.codes)})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema": self.schema.to_json(),
            "inputs": {
                NUMERIC_INPUT: {"columns": self.numeric, "dtype": "float64", "missing": "NaN"},
                CATEGORICAL_INPUT: {"columns": self.categorical, "dtype": "string", "missing": MISSING_TEXT,
                                    "note": "ONNX: text in, mapped to codes inside the graph"},
                CODES_INPUT: {"columns": self.categorical, "dtype": "int64", "missing": 0,
                              "note": "TorchScript: the codes below, 0 for missing or unseen"},
            },
            "output": {"name": self.output,
                       "columns": list(self.schema.classes) if self.schema.classes is not None else None},
            "codes": self.codes,
        }

    def write(self, directory: Path) -> Path:
        path = directory / FILE
        path.write_text(json.dumps(self.to_json(), indent=1, default=str) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> "Signature":
        path = directory / FILE
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AutoMLError(f"{path} cannot be read ({exc}): export the run again") from None
        if raw.get("format") != FORMAT:
            raise AutoMLError(f"{path}: format {raw.get('format')} is not supported (expects {FORMAT}): export "
                              "the run again")
        return cls(schema=InputSchema.from_json(raw["schema"]), numeric=raw["inputs"][NUMERIC_INPUT]["columns"],
                   categorical=raw["inputs"][CATEGORICAL_INPUT]["columns"], codes=raw["codes"])

    # -- inputs from checked rows: `check_rows(...).arrays` (or its `.frame`: any mapping column -> values) --

    def numeric_matrix(self, columns: Mapping[str, Any]) -> "np.ndarray":
        import numpy as np

        if not self.numeric:
            return np.zeros((_length(columns, self.categorical), 0), dtype=np.float64)
        return np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in self.numeric])

    def text_matrix(self, columns: Mapping[str, Any]) -> "np.ndarray":
        import numpy as np
        import pandas as pd

        out = []
        for c in self.categorical:
            values = np.array(columns[c], dtype=object)
            values[pd.isna(values)] = MISSING_TEXT
            out.append(values)
        return np.column_stack(out)

    def code_matrix(self, columns: Mapping[str, Any]) -> "np.ndarray":
        import numpy as np

        out = np.zeros((_length(columns, self.numeric + self.categorical), len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            codes = self.codes[col]
            out[:, j] = [codes.get(v, 0) if isinstance(v, str) else 0 for v in columns[col]]
        return out

    def onnx_feeds(self, columns: Mapping[str, Any]) -> dict[str, "np.ndarray"]:
        feeds = {}
        if self.numeric:
            feeds[NUMERIC_INPUT] = self.numeric_matrix(columns)
        if self.categorical:
            feeds[CATEGORICAL_INPUT] = self.text_matrix(columns)
        return feeds


def _length(columns: Mapping[str, Any], names: list[str]) -> int:
    return len(columns[names[0]]) if names else 0
