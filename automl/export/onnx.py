"""A tabular predictor as one ONNX graph: raw columns in, probabilities (or values) out.

The exporter is pinned: `torch.export.export(..., dynamic_shapes=batch axis)`, then `torch.onnx.export(that
program, dynamo=True, opset_version=OPSET)`. torch made this `torch.export`-based exporter the default in 2.9
and deprecated the TorchScript-based one ("will be removed"), so code that relies on the old one breaks on an
upgrade (`dynamic_axes` with the default exporter fails with "Failed to convert 'dynamic_axes' to
'dynamic_shapes'"). Running `torch.export` by hand first also means a network that fixes the batch size is
refused with the reason, where `torch.onnx.export` alone would quietly fall back to a graph of one fixed batch
size. Naming the exporter and the opset makes the file reproducible; both are recorded in `export.json`.

torch cannot take text, so the exported module (`automl.export.graph.PredictorGraph`) takes category
codes; this module then puts ONNX-ML `LabelEncoder` nodes (one per categorical column, the preprocessor's
own codes, 0 for anything else) in front of it, so the file's inputs are what a client has:

- `numeric`: float64 (n, numeric columns), NaN for a missing value;
- `categorical`: string (n, categorical columns), "" for a missing value;

in the column order of the export's `inputs.json` (also in the file's metadata). Output `probabilities`
(n, classes, float32, in `classes` order) or `value` (n, float64) for regression.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from automl.errors import AutoMLError
from automl.export.signature import CATEGORICAL_INPUT, MISSING_TEXT, NUMERIC_INPUT, Signature

if TYPE_CHECKING:  # pragma: no cover
    import onnx

#: The ONNX opset of the default domain (torch 2.13's default for the dynamo exporter; onnxruntime >= 1.16 runs it).
OPSET = 20
#: ai.onnx.ml opset for LabelEncoder (string keys to int64 values, with a default).
ML_OPSET = 3
EXPORTER = "torch.export.export (dynamic batch) + torch.onnx.export(dynamo=True)"
CODES = "codes"


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's warnings (unused torchvision ops, pytree deprecations) are not the user's business."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(predictor: Any, path: Path) -> Signature:
    """Write the predictor as one ONNX file at `path`; returns the signature to ship beside it."""
    import onnx
    import torch

    from automl.export.graph import PredictorGraph

    graph = PredictorGraph(predictor)
    signature = Signature.of(predictor, graph)
    if any(MISSING_TEXT in codes for codes in signature.codes.values()):
        col = next(c for c, codes in signature.codes.items() if MISSING_TEXT in codes)
        raise AutoMLError(f"cannot export: column {col!r} has the empty text as a category, which the ONNX graph "
                          "reads as missing; rename that category in the data and run the search again")
    module, args, names = _entry(graph)
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet_exporter():
            # torch.export first, by hand: it says where a network fixes the batch size (the ONNX exporter would
            # fall back to a graph of one fixed batch size), and the ONNX exporter then converts that program.
            exported = torch.export.export(module, args, dynamic_shapes=tuple({0: batch} for _ in args), strict=False)
    except Exception as exc:  # noqa: BLE001 - torch.export's errors are many-lined; one line says which
        why = ("its forward fixes the batch size (e.g. len(x) where x.shape[0] keeps it symbolic)"
               if "specialized it to be a constant" in str(exc) else _first_line(exc))
        raise AutoMLError(f"torch.export cannot trace this predictor's network ({predictor.meta.lead.family}) for "
                          f"any batch size: {why}; score it with automl.load(run_dir)") from exc
    try:
        with _quiet_exporter():
            program = torch.onnx.export(exported, args, dynamo=True, opset_version=OPSET, input_names=names,
                                        output_names=[signature.output], external_data=False, optimize=True,
                                        verbose=False)
    except Exception as exc:  # noqa: BLE001
        raise AutoMLError(f"torch.onnx.export failed on this predictor ({_first_line(exc)}); export with --format "
                          "torchscript, or score with automl.load(run_dir)") from exc
    model = program.model_proto
    _name_batch_axis(model)
    if signature.categorical:
        _read_text_categories(model, signature)
    meta = {"automl.inputs": json.dumps({"numeric": signature.numeric, "categorical": signature.categorical}),
            "automl.task": signature.schema.task, "automl.target": str(signature.schema.target),
            "automl.classes": json.dumps(signature.schema.classes, default=str)}
    onnx.helper.set_model_props(model, meta)
    model.doc_string = "automl tabular predictor: preprocessing, network, calibration (see inputs.json)"
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return signature


def _first_line(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # the exporter colours its messages
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}"


def _name_batch_axis(model: "onnx.ModelProto") -> None:
    """The exporter names the batch axis after its symbol ("s77"); call it "batch" wherever it appears, and
    refuse a graph whose batch axis came out fixed."""
    g = model.graph
    first = g.input[0].type.tensor_type.shape.dim[0]
    if not first.dim_param:
        raise AutoMLError(f"the exported graph takes a fixed batch of {first.dim_value} rows, not any number: this "
                          "network cannot be exported to ONNX; export with --format torchscript")
    symbol = first.dim_param
    for value in [*g.input, *g.output, *g.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "batch"


def _entry(graph: Any) -> tuple[Any, tuple[Any, ...], list[str]]:
    """The module to export and its example inputs: only the inputs the predictor has (a table without
    categorical columns has no `codes` input). Four example rows: a batch of 1 would be specialised."""
    import torch
    from torch import nn

    n = 4
    numeric = torch.zeros(n, graph.n_numeric, dtype=torch.float64)
    codes = torch.zeros(n, graph.n_categorical, dtype=torch.long)
    if graph.n_numeric and graph.n_categorical:
        return graph, (numeric, codes), [NUMERIC_INPUT, CODES]

    class NumericOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.whole = graph  # not `graph`: torch.fx's GraphModule has an attribute of that name

        def forward(self, numeric: torch.Tensor) -> torch.Tensor:
            return self.whole(numeric, torch.zeros(numeric.shape[0], 0, dtype=torch.long))

    class CodesOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.whole = graph

        def forward(self, codes: torch.Tensor) -> torch.Tensor:
            return self.whole(torch.zeros(codes.shape[0], 0, dtype=torch.float64), codes)

    if graph.n_numeric:
        return NumericOnly(), (numeric,), [NUMERIC_INPUT]
    return CodesOnly(), (codes,), [CODES]


def _read_text_categories(model: "onnx.ModelProto", signature: Signature) -> None:
    """Replace the `codes` input by a string input `categorical`, mapped to codes by one LabelEncoder per
    column (the preprocessor's codes; anything else, "" included, is 0 = missing or unseen)."""
    from onnx import TensorProto, helper

    g = model.graph
    codes_input = next(i for i in g.input if i.name == CODES)
    batch = codes_input.type.tensor_type.shape.dim[0]
    nodes, columns = [], []
    for j, col in enumerate(signature.categorical):
        mapping = signature.codes[col]
        index, text, code, unsq = (f"automl_cat{j}_{s}" for s in ("index", "text", "code", "column"))
        nodes += [
            helper.make_node("Constant", [], [index], value=helper.make_tensor(index, TensorProto.INT64, [], [j])),
            helper.make_node("Gather", [CATEGORICAL_INPUT, index], [text], axis=1),
            helper.make_node("LabelEncoder", [text], [code], domain="ai.onnx.ml", name=f"categories_of_{j}",
                             keys_strings=list(mapping), values_int64s=[int(v) for v in mapping.values()],
                             default_int64=0),
            helper.make_node("Unsqueeze", [code, f"{unsq}_axes"], [unsq]),
        ]
        g.initializer.append(helper.make_tensor(f"{unsq}_axes", TensorProto.INT64, [1], [1]))
        columns.append(unsq)
    nodes.append(helper.make_node("Concat", columns, [CODES], axis=1))
    text_input = helper.make_tensor_value_info(CATEGORICAL_INPUT, TensorProto.STRING,
                                               [batch.dim_param or None, len(signature.categorical)])
    position = list(g.input).index(codes_input)
    g.input.remove(codes_input)
    g.input.insert(position, text_input)
    for node in reversed(nodes):  # ahead of everything: ONNX nodes are listed in topological order
        g.node.insert(0, node)
    ml = [o for o in model.opset_import if o.domain == "ai.onnx.ml"]
    if ml:  # the exporter may declare an older ai.onnx.ml, whose LabelEncoder takes other attributes
        ml[0].version = max(ml[0].version, ML_OPSET)
    else:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))


def onnx_versions() -> dict[str, str | None]:
    """The libraries that made and run the file."""
    import importlib.metadata

    out = {}
    for dist in ("torch", "onnx", "onnxscript", "onnxruntime"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out

