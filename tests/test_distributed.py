"""Scale-out: two `automl` processes (two machines, as far as Optuna is concerned) share one study in a
real PostgreSQL server started on loopback for the test."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from automl.testing import faults

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def postgres_url():
    if not faults.postgres_available():
        message = "PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with faults.postgres_server() as url:
        yield url


SECRET = "s3cret-Pw"


def test_two_processes_share_one_study_in_postgresql(postgres_url, credit_csv, automl_cli, tmp_path):
    import optuna

    # the server trusts loopback, so any password connects: the one in the URL must never be written anywhere
    with_password = postgres_url.replace("postgres@", f"postgres:{SECRET}@")

    def command(name: str) -> list[str]:
        return [automl_cli, f"data.path={credit_csv}", "data.target=Status", "search.n_trials=3",
                "trainer.max_epochs=2", f"search.storage={with_password}", "search.study_name=shared",
                "search.n_workers=1", f"run_dir={tmp_path / name}"]

    procs = [subprocess.Popen(command(n), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in ("machine_a", "machine_b")]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    assert len(study.trials) == 6  # each process ran its own n_trials: exactly their sum
    assert faults.duplicated_params(study.trials) == 0  # seeded apart: no parameter set evaluated twice
    # each process logged its sampler's seed offset
    for out, err in outputs:
        assert "sampler seed" in err
    boards = [pd.read_csv(tmp_path / n / "leaderboard.csv") for n in ("machine_a", "machine_b")]
    assert max(len(b) for b in boards) == 6  # whoever finished last saw every trial of both
    import automl

    rows = pd.read_csv(credit_csv).drop(columns=["Status"]).head(5)
    for name in ("machine_a", "machine_b"):
        assert automl.load(tmp_path / name).predict_proba(rows).shape == (5, 2)
    # the password reached no log, no output and no file of either run directory (Hydra's records included)
    for out, err in outputs:
        assert SECRET not in out and SECRET not in err
    written = [p for name in ("machine_a", "machine_b") for p in (tmp_path / name).rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in written) and any(p.name == "automl.log" for p in written)
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]


def test_a_storage_that_cannot_be_opened_is_one_line_without_the_password(automl_cli, credit_csv, tmp_path):
    port = faults.free_port()  # nothing listens there
    proc = subprocess.run([automl_cli, f"data.path={credit_csv}", "data.target=Status", "search.n_trials=1",
                           f"search.storage=postgresql://u:{SECRET}@127.0.0.1:{port}/db",
                           f"run_dir={tmp_path / 'D'}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    error = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and error.startswith("automl: error: ") and proc.stderr.count("automl: error") == 1
    assert "cannot be opened" in error and "u:***@127.0.0.1" in error
    written = [p for p in (tmp_path / "D").rglob("*") if p.is_file()]
    assert SECRET not in proc.stderr + proc.stdout and not [p for p in written if SECRET.encode() in p.read_bytes()]
