"""What the service scores with, chosen once at start-up.

- `OnnxBackend`: the run's ONNX export (`RUN_DIR/export/model.onnx`) by onnxruntime, when one exists and was
  made from the run's current predictor; the input schema comes from its `inputs.json`, so torch is never
  imported.
- `TorchBackend`: the predictor itself (`automl.load`), otherwise.
- `RecommenderBackend`: the recommendation domain's `Recommender` (`recommend(user, k)`).

The tabular backends return the same thing: probabilities (n, classes) in class order, or values (n,).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import AutoMLError
from automl.tasks import BINARY, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from automl.validation import CheckedRows, InputSchema


BACKENDS = ("auto", "onnx", "torch")


class OnnxBackend:
    name = "onnx"

    def __init__(self, model: Path, signature: Any) -> None:
        from automl.export.runtime import OnnxScorer

        self.scorer = OnnxScorer(model, signature)
        self.schema: "InputSchema" = signature.schema
        self.detail = f"ONNX export {model.name} (onnxruntime)"

    def outputs(self, checked: "CheckedRows") -> "np.ndarray":
        return self.scorer.outputs(checked.arrays)


class TorchBackend:
    name = "torch"

    def __init__(self, predictor: Any, why: str) -> None:
        self.predictor = predictor
        self.schema: "InputSchema" = predictor.schema()
        self.detail = f"torch predictor ({why})"

    def outputs(self, checked: "CheckedRows") -> "np.ndarray":
        # Exactly what automl.load(run_dir).predict_proba returns (the rows are already checked: strict).
        if self.predictor.task == REGRESSION:
            return self.predictor.predict(checked.frame).to_numpy()
        return self.predictor.predict_proba(checked.frame).to_numpy()


class RecommenderBackend:
    name = "recommender"
    schema = None

    def __init__(self, recommender: Any) -> None:
        self.recommender = recommender
        self.detail = f"recommender ({recommender.meta.lead.family})"


def choose_backend(run_dir: Path, prefer: str = "auto") -> Any:
    """The ONNX export when there is a current one (and `prefer` allows it), else the loaded predictor."""
    from automl.export.bundle import find_onnx_export

    if prefer not in BACKENDS:
        raise AutoMLError(f"--backend {prefer!r} is not valid: use one of {', '.join(BACKENDS)}")
    why = "asked for with --backend torch"
    if prefer != "torch":
        found, why = find_onnx_export(run_dir)
        if found is not None:
            return OnnxBackend(*found)
        if prefer == "onnx":
            raise AutoMLError(f"--backend onnx: {why}")
    from automl.predictor import load
    from automl.tabular.predictor import TabularPredictor

    predictor = load(run_dir)
    if isinstance(predictor, TabularPredictor):
        return TorchBackend(predictor, why)
    if callable(getattr(predictor, "recommend", None)):
        return RecommenderBackend(predictor)
    raise AutoMLError(f"the predictor in {run_dir} ({type(predictor).__name__}) neither scores rows nor recommends: "
                      "automl serve cannot serve it")


def probabilities_or_values(outputs: "np.ndarray", schema: "InputSchema") -> "np.ndarray":
    """The scores the labelling rule takes: binary P(positive), multiclass the matrix, regression values."""
    if schema.task == REGRESSION:
        return outputs
    if schema.task == BINARY:
        return outputs[:, list(schema.classes).index(schema.positive_class)]
    return outputs
