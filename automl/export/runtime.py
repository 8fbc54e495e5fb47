"""Scoring an ONNX export with onnxruntime alone: no torch, no model code, just the file and `inputs.json`.

`OnnxScorer.scores` returns what `TabularPredictor._scores` returns (binary: P(positive); multiclass: the
probability matrix; regression: values), so the validation layer's output checks and labelling rule apply
unchanged; the service scores through it when the run has an export.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from automl.export.signature import Signature
from automl.tasks import BINARY

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class OnnxScorer:
    """An ONNX export run by onnxruntime on the CPU; feed it `automl.validation.check_rows(...).arrays` (or a
    DataFrame of checked rows)."""

    def __init__(self, model: Path, signature: Signature, threads: Optional[int] = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.path, self.signature = Path(model), signature
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def outputs(self, columns: Mapping[str, Any]) -> "np.ndarray":
        """The graph's output: probabilities (n, classes) in class order, or values (n,)."""
        return self.session.run([self.signature.output], self.signature.onnx_feeds(columns))[0]

    def scores(self, columns: Mapping[str, Any]) -> "np.ndarray":
        out = self.outputs(columns)
        schema = self.signature.schema
        if schema.task == BINARY:
            return out[:, list(schema.classes).index(schema.positive_class)]
        return out
