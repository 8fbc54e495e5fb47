"""`automl export RUN_DIR`: a run's tabular predictor as one graph, checked against the predictor before it stays.

- `graph.py`: the predictor as one torch module (preprocessing from its JSON state, the network or ensemble,
  calibration, probabilities out); refuses what it does not reproduce;
- `onnx.py`: that module through `torch.onnx.export(dynamo=True)`, with text-to-code lookups inside the graph;
- `torchscript.py`: the same module traced to TorchScript (category codes from `inputs.json`);
- `signature.py`: `inputs.json`, what the file takes and returns, beside it;
- `runtime.py`: scoring an ONNX file with onnxruntime alone (no torch);
- `rows.py`: the run's test rows, re-derived from its config, or a file's;
- `quantize.py`: the int8 copy and what it costs;
- `bundle.py`: the export folder, the parity check and `export.json`.
"""
