"""Scale-out: two `automl` processes (two machines, as far as Optuna is concerned) share one study in a
real PostgreSQL server started on loopback for the test."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        message = "PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # the server refuses root
    root = Path(tempfile.mkdtemp(prefix="automl-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    subprocess.run([*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        conn.cursor().execute("CREATE DATABASE automl")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/automl"
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
    assert len(study.trials) == 6
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
    port = _free_port()  # nothing listens there
    proc = subprocess.run([automl_cli, f"data.path={credit_csv}", "data.target=Status", "search.n_trials=1",
                           f"search.storage=postgresql+psycopg2://u:{SECRET}@127.0.0.1:{port}/db",
                           f"run_dir={tmp_path / 'D'}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    error = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and error.startswith("automl: error: ") and proc.stderr.count("automl: error") == 1
    assert "cannot be opened" in error and "u:***@127.0.0.1" in error
    written = [p for p in (tmp_path / "D").rglob("*") if p.is_file()]
    assert SECRET not in proc.stderr + proc.stdout and not [p for p in written if SECRET.encode() in p.read_bytes()]
