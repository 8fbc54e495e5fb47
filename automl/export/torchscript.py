"""A tabular predictor as one TorchScript file (`torch.jit.trace` of `automl.export.graph.PredictorGraph`).

TorchScript takes tensors only, so the file takes `numeric` (float64, NaN for missing) and `codes` (int64,
the preprocessor's category codes from `inputs.json`, 0 for missing or unseen); `TorchScriptScorer` applies
that lookup. torch 2.13 marks `torch.jit` deprecated in favour of `torch.export`; ONNX is the format to
prefer, this one is for a runtime that loads TorchScript (libtorch in C++, an older serving stack).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from automl.errors import AutoMLError
from automl.export.signature import Signature
from automl.tasks import BINARY

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

EXPORTER = "torch.jit.trace (TorchScript; deprecated by torch 2.13 in favour of torch.export)"


def export_torchscript(predictor: Any, path: Path) -> Signature:
    """Trace the whole predictor on example rows and save it at `path`; returns the signature to ship."""
    import torch

    from automl.export.graph import PredictorGraph

    graph = PredictorGraph(predictor).eval()
    signature = Signature.of(predictor, graph)
    # Five rows with a missing value in each numeric column: the trace must see every branch-free op.
    numeric = torch.zeros(5, graph.n_numeric, dtype=torch.float64)
    numeric[0] = float("nan")
    codes = torch.zeros(5, graph.n_categorical, dtype=torch.long)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice, tracer warnings on shapes
            traced = torch.jit.trace(graph, (numeric, codes), check_inputs=[
                (torch.randn(7, graph.n_numeric, dtype=torch.float64), codes[:1].repeat(7, 1))])
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AutoMLError(f"torch.jit.trace failed on this predictor ({type(exc).__name__}: {first[:300]}); "
                          "export with --format onnx, or score with automl.load(run_dir)") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced.save(str(path))
    return signature


class TorchScriptScorer:
    """A TorchScript export loaded with `torch.jit.load`; feed it rows checked by `check_rows`."""

    def __init__(self, model: Path, signature: Signature) -> None:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.module = torch.jit.load(str(model), map_location="cpu").eval()
        self.path, self.signature = Path(model), signature

    def outputs(self, columns: Mapping[str, Any]) -> "np.ndarray":
        import torch

        sig = self.signature
        numeric = torch.from_numpy(sig.numeric_matrix(columns))
        codes = torch.from_numpy(sig.code_matrix(columns))
        with torch.inference_mode():
            return self.module(numeric, codes).numpy()

    def scores(self, columns: Mapping[str, Any]) -> "np.ndarray":
        out = self.outputs(columns)
        schema = self.signature.schema
        if schema.task == BINARY:
            return out[:, list(schema.classes).index(schema.positive_class)]
        return out
