"""`automl dashboard RUN_DIR`: optuna-dashboard on the run's own study, bound to 127.0.0.1, started as the user
starts it (a subprocess on a free port), asked for its page and its API, then stopped."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory holding a small study in its journal file, as a search leaves it (no training needed)."""
    import optuna

    from automl.search.study import make_storage

    folder = tmp_path / "D"
    folder.mkdir()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="automl", storage=make_storage(None, folder), direction="maximize")
    study.optimize(lambda t: -(t.suggest_float("lr", 1e-4, 1e-1, log=True) - 0.01) ** 2, n_trials=4)
    return folder


def _get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_dashboard_serves_the_runs_study_on_loopback(automl_cli, run_dir, tmp_path):
    port = _free_port()
    proc = subprocess.Popen([automl_cli, "dashboard", str(run_dir), "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status, page = _get(f"http://127.0.0.1:{port}/dashboard/")
        assert status == 200 and b"Optuna Dashboard" in page
        status, body = _get(f"http://127.0.0.1:{port}/api/studies")
        studies = json.loads(body)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["automl"]
        if shutil.which("ss"):  # bound to loopback only, not to every interface
            listening = subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True).stdout
            assert f"127.0.0.1:{port}" in listening and f"0.0.0.0:{port}" not in listening
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/dashboard/" in out, (out, err)


def test_a_folder_without_a_study_is_one_line(automl_cli, tmp_path):
    proc = subprocess.run([automl_cli, "dashboard", str(tmp_path), "--port", str(_free_port())], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "study.journal is missing" in proc.stderr and "--storage URL" in proc.stderr


def test_a_database_url_whose_password_was_redacted_asks_for_it(automl_cli, run_dir, tmp_path):
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(
        "search:\n  storage: postgresql+psycopg2://u:***@127.0.0.1:5432/db\n")
    proc = subprocess.run([automl_cli, "dashboard", str(run_dir)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "whose password is not kept: pass --storage URL" in proc.stderr


def test_a_busy_port_is_one_line(automl_cli, run_dir, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([automl_cli, "dashboard", str(run_dir), "--port", str(port)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
