"""Fixtures of the recommendation plugin's tests: real shipped interactions, a hermetic host, tiny budgets (the
CLI and the one-thread fixture come from automl's pytest plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Overrides that keep a real search to seconds (in-process: the plugin may be registered in-process only).
TINY = ["search.n_trials=2", "trainer.max_epochs=2", "trainer.patience=2", "search.n_workers=0"]


@pytest.fixture
def host():
    """Only the host's own plugin and this one, registered in-process: other installed plugins change nothing."""
    from automl.testing import plugin_host

    from automl_recommendation import plugin

    return plugin_host(plugin, "recommendation")


@pytest.fixture(scope="session")
def movielens():
    from automl_recommendation.datasets import load_movielens

    return load_movielens()


@pytest.fixture(scope="session")
def prepared():
    """movielens prepared as a run prepares it (implicit, leave-last-out): a `automl.testing.DomainData`."""
    from automl.testing import plugin_host, prepare_domain

    from automl_recommendation import plugin

    return prepare_domain(plugin_host(plugin, "recommendation"), ["domain=recommendation", "dataset=movielens"])


@pytest.fixture(scope="session")
def small_log(tmp_path_factory, movielens) -> Path:
    """A real interaction file of one's own: the first 60 movielens users, columns named the default way,
    time as ISO dates rather than epoch seconds."""
    import pandas as pd

    frame = movielens[movielens.userId <= 60][["userId", "movieId", "timestamp", "rating"]]
    frame = frame.rename(columns={"userId": "user", "movieId": "item", "timestamp": "when"})
    frame["when"] = pd.to_datetime(frame["when"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path_factory.mktemp("data") / "log.csv"
    frame.to_csv(path, index=False)
    return path
