"""Fixtures of the recommendation plugin's tests: real shipped interactions, a hermetic host, tiny budgets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: Overrides that keep a real search to seconds (in-process: the plugin may be registered in-process only).
TINY = ["search.n_trials=2", "trainer.max_epochs=2", "trainer.patience=2", "search.n_workers=0"]


@pytest.fixture
def host():
    """Only the host's own plugin and this one, registered in-process: other installed plugins change nothing."""
    from automl.plugins import PluginHost

    from automl_recommendation import plugin

    return PluginHost(entry_points=False, plugins=[("recommendation", plugin)])


@pytest.fixture(scope="session")
def movielens():
    from automl_recommendation.datasets import load_movielens

    return load_movielens()


@pytest.fixture(scope="session")
def prepared(movielens):
    """movielens prepared as a run prepares it (implicit, leave-last-out), with its pipeline."""
    from automl.compose import compose
    from automl.config import RunConfig
    from automl.plugins import PluginHost
    from automl.run import domain_options, make_pipeline

    from automl_recommendation import plugin

    host = PluginHost(entry_points=False, plugins=[("recommendation", plugin)])
    cfg = RunConfig.from_container(compose(host, ["domain=recommendation", "dataset=movielens"]))
    domain = host.domain("recommendation")
    pipeline = make_pipeline(domain, domain_options(domain, cfg.domain.options))
    return pipeline, pipeline.prepare(cfg, host, domain, None)


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


@pytest.fixture(scope="session")
def automl_cli() -> str:
    exe = Path(sys.executable).with_name("automl")
    assert exe.exists(), f"console script missing at {exe}: install the project (make setup)"
    return str(exe)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # The tests share two cores with whatever else runs; one torch thread keeps them steady.
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
