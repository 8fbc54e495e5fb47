"""End to end on shipped data: the real `automl` command on breast_biopsy (metrics with intervals, pictures,
privacy of the run directory, the saved predictor) and a cross-validated search on parkinsons_speech."""

from __future__ import annotations

import json
import logging
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
REPORTED = ("roc_auc", "sensitivity", "specificity", "ppv", "npv", "balanced_accuracy", "brier", "ece")


def _identifier_hits(directory: Path, values: list[int]) -> list[str]:
    """Files under `directory` holding any of `values`: as a decimal token in any file, or as the bytes of an
    int32/int64/float32/float64 anywhere (binary files included: journal, safetensors, pictures)."""
    token = re.compile(rb"(?<![0-9.])(" + b"|".join(str(v).encode() for v in values) + rb")(?![0-9])")
    packed = [struct.pack(fmt, cast(v)) for v in values for fmt, cast in
              (("<q", int), ("<i", int), ("<d", float), ("<f", float))]
    hits = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = token.search(data)
        if found:
            hits.append(f"{path.relative_to(directory)}: {found.group(0).decode()}")
        elif any(b in data for b in packed):
            hits.append(f"{path.relative_to(directory)}: binary")
    return hits


def _longest(value: object) -> int:
    """Length of the longest list or mapping inside a JSON value."""
    if isinstance(value, list):
        return max([len(value), *map(_longest, value)])
    if isinstance(value, dict):
        return max([len(value), *map(_longest, value.values())])
    return 0


@pytest.fixture(scope="module")
def biopsy_run(tmp_path_factory, automl_cli):
    run_dir = tmp_path_factory.mktemp("medical") / "D"
    tiny = ["search.n_trials=3", "trainer.max_epochs=5", "trainer.patience=3", "search.cv.folds=3",
            "search.cv.repeats=1", "domain.options.bootstrap=200"]
    proc = subprocess.run([automl_cli, "domain=medical", "dataset=breast_biopsy", *tiny, f"run_dir={run_dir}"],
                          cwd=run_dir.parent, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return run_dir, tiny, proc


def test_cli_writes_clinical_metrics_with_intervals_and_pictures(biopsy_run):
    run_dir, _, proc = biopsy_run
    report = json.loads((run_dir / "metrics.json").read_text())
    metrics, point = report["test"], report["details"]["operating_point"]
    for name in REPORTED:
        low, high = report["ci95"][name]
        assert isinstance(metrics[name], float) and low <= metrics[name] <= high, name
    assert metrics["roc_auc"] >= 0.97  # three tiny trials; the full must-show run reaches >= 0.98
    assert point["chosen_on"] == "validation" and point["validation_sensitivity"] >= 0.9
    assert (run_dir / "roc_curve.png").stat().st_size > 10_000
    assert (run_dir / "calibration_curve.png").stat().st_size > 10_000
    assert "sensitivity" in proc.stdout  # the summary line shows the clinical metrics


def test_small_data_trials_are_scored_by_cross_validation(biopsy_run):
    run_dir = biopsy_run[0]
    board = pd.read_csv(run_dir / "leaderboard.csv")
    done = board[board.state == "complete"]
    assert len(done) >= 1 and done.cv_scores.notna().all()
    assert all(len(json.loads(s)) == 3 for s in done.cv_scores)  # search.cv.folds=3 x repeats=1
    assert "cross-validation" in (run_dir / "automl.log").read_text()


def test_no_file_in_the_run_directory_holds_an_identifier(biopsy_run, biopsy, tmp_path):
    run_dir = biopsy_run[0]
    ids = sorted({int(v) for v in biopsy["ID"]})
    assert len(ids) == 645
    files = [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()]
    assert {"study.journal", "automl.log", "leaderboard.csv", "metrics.json", ".hydra/config.yaml",
            "predictor/model.safetensors", "predictor/predictor.json"} <= set(files)
    assert _identifier_hits(run_dir, ids) == []
    # the scan itself finds identifiers where they are: as text and as binary
    (tmp_path / "ids.csv").write_text(biopsy[["ID", "V1"]].to_csv(index=False))
    (tmp_path / "ids.bin").write_bytes(np.asarray(ids[:3], dtype=np.float32).tobytes())
    assert [h.split(":")[0] for h in _identifier_hits(tmp_path, ids)] == ["ids.bin", "ids.csv"]


def test_the_saved_predictor_holds_no_training_rows(biopsy_run, biopsy, host):
    from safetensors.numpy import load_file

    from automl.testing import prepare_domain

    run_dir, tiny, _ = biopsy_run
    # the run's own split, re-derived
    prepared = prepare_domain(host, ["domain=medical", "dataset=breast_biopsy", *tiny]).prepared
    train = prepared.train
    predictor_dir = run_dir / "predictor"
    for tensor in load_file(str(predictor_dir / "model.safetensors")).values():
        assert not {len(train), len(prepared.val), len(biopsy)} & set(tensor.shape)

    blob = b"".join(p.read_bytes() for p in predictor_dir.iterdir())
    features = [f"V{i}" for i in range(1, 10)]
    raw = biopsy[features].to_numpy(np.float64)[train]
    rows = [raw, raw.astype(np.float32), prepared.arrays["x_num"][train]]
    assert not any(r.tobytes() in blob for block in rows for r in block)
    for meta in predictor_dir.glob("*.json"):
        # every list or mapping under a top-level key grows per feature, never per row
        assert max(map(_longest, json.loads(meta.read_text()).values())) <= 2 * len(features) + 2, meta.name


def test_loaded_predictor_decides_at_the_operating_point(biopsy_run, biopsy):
    import automl

    run_dir = biopsy_run[0]
    report = json.loads((run_dir / "metrics.json").read_text())
    predictor = automl.load(run_dir)
    assert predictor.threshold == pytest.approx(report["details"]["operating_point"]["threshold"])
    rows = biopsy.drop(columns=["class"]).head(60)
    proba = predictor.predict_proba(rows)["malignant"]
    expected = np.where(proba >= predictor.threshold, "malignant", "benign")
    assert predictor.predict(rows).tolist() == expected.tolist()
    assert set(expected) == {"malignant", "benign"}


def test_parkinsons_search_scores_trials_by_cross_validation(tmp_path, host, tiny, caplog):
    from automl import AutoML

    caplog.set_level(logging.INFO)
    result = AutoML(domain="medical", overrides=[*tiny, "search.n_workers=0", "domain.options.plots=false"],
                    host=host).fit(dataset="parkinsons_speech", run_dir=tmp_path / "pd")
    board = result.leaderboard
    assert board.cv_scores.notna().any() and board.cv_std.notna().any()
    assert "3-fold cross-validation" in caplog.text and "252 rows" in caplog.text
    assert result.outcome.final.report.n_test == 51
    low, high = result.ci95["roc_auc"]
    assert low <= result.test_metrics["roc_auc"] <= high and set(result.ci95) >= set(REPORTED)
