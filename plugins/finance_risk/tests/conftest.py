"""Fixtures of the finance_risk tests: a hermetic host holding this plugin, the installed CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def host():
    """The built-in plugin plus this one, registered in-process: installed plugins cannot change the result."""
    from automl.plugins import PluginHost
    from automl_finance_risk import plugin

    return PluginHost(entry_points=False, plugins=[("finance_risk", plugin)])


@pytest.fixture
def automl_cli() -> str:
    exe = Path(sys.executable).with_name("automl")
    assert exe.exists(), f"console script missing at {exe}: install the project (make setup)"
    return str(exe)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # The machine is shared: one torch thread per process keeps the tests polite.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
