"""Fixtures of the finance_risk tests: a hermetic host holding this plugin (the CLI and the one-thread fixture
come from automl's pytest plugin)."""

from __future__ import annotations

import pytest


@pytest.fixture
def host():
    """The built-in plugin plus this one, registered in-process: installed plugins cannot change the result."""
    from automl.testing import plugin_host
    from automl_finance_risk import plugin

    return plugin_host(plugin, "finance_risk")
