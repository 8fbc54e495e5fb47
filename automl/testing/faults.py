"""Faults on purpose, for the reliability tests and `benchmarks/reliability.py`: a real `automl` command
started in its own session (so a kill of its process group reaches every worker, as a crash would), its
study read while it runs, its worker processes found, and a throwaway PostgreSQL server on loopback.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional


def automl_command() -> str:
    """The `automl` console script of this environment."""
    return str(Path(sys.executable).with_name("automl"))


def start(args: list[str], cwd: Path, env: Optional[dict[str, str]] = None) -> subprocess.Popen:
    """`automl ARGS` in a session of its own: `os.killpg(proc.pid, ...)` reaches it and all its workers."""
    return subprocess.Popen([automl_command(), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=env)


def trials(run_dir: Path, storage: Optional[str] = None, study_name: str = "automl") -> list[Any]:
    """The study's trials as they stand (none before the study exists)."""
    import optuna

    from automl.search.study import make_storage

    if storage is None and not (run_dir / "study.journal").exists():
        return []
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return optuna.load_study(study_name=study_name, storage=make_storage(storage, run_dir)).trials
    except (KeyError, ValueError):  # not created yet
        return []


def by_state(found: list[Any], *states: str) -> list[Any]:
    return [t for t in found if t.state.name in states]


def wait_for_trials(run_dir: Path, proc: subprocess.Popen, complete: int, running: int = 1,
                    timeout: float = 240.0) -> list[Any]:
    """Wait until `complete` trials finished while `running` (from as many processes) are training; returns the
    running ones. Fails when the run ends first."""
    end = time.time() + timeout
    while time.time() < end:
        found = trials(run_dir)
        # training, not still sampling: its parameters are all recorded
        now = [t for t in by_state(found, "RUNNING") if "hp" in t.user_attrs]
        processes = {t.user_attrs.get("process") for t in now}
        if len(by_state(found, "COMPLETE")) >= complete and len(processes) >= running:
            return now
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the fault: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    raise AssertionError("the trials did not start in time")


def pid_of(trial: Any) -> int:
    return int(trial.user_attrs["process"].rsplit(":", 1)[1])


def zygote_pid(host_pid: int) -> int:
    """The first worker process, started by the automl process itself (its siblings are forked by it)."""
    children = Path(f"/proc/{host_pid}/task/{host_pid}/children").read_text().split()
    if not children:
        raise AssertionError("the automl process has no worker process")
    return int(children[0])


def session_alive(session: int) -> bool:
    """Whether any process of that session is still running (no worker outlived its run); a zombie waiting for
    init to reap it has ended."""
    states = subprocess.run(["ps", "-o", "stat=", "-s", str(session)], capture_output=True, text=True).stdout.split()
    return any(not s.startswith("Z") for s in states)


def cut_last_record(journal: Path) -> None:
    """A torn write: the journal's last record cut in half."""
    raw = journal.read_bytes()
    last = raw.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(raw[: last + (len(raw) - last) // 2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bin(name: str) -> Optional[str]:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def postgres_available() -> bool:
    return bool(_postgres_bin("initdb") and _postgres_bin("pg_ctl"))


@contextlib.contextmanager
def postgres_server(database: str = "automl") -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 with one empty database; yields its URL as the README writes
    one (`postgresql://...`)."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # the server refuses root
    root = Path(tempfile.mkdtemp(prefix="automl-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run([*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        import psycopg

        # autocommit: CREATE DATABASE cannot run inside a transaction
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def duplicated_params(found: list[Any]) -> int:
    """Parameter sets evaluated more than once, re-runs of interrupted trials excepted."""
    import json

    seen: dict[str, int] = {}
    for t in found:
        if t.state.name == "WAITING" or t.user_attrs.get("rerun_of") is not None or t.user_attrs.get("interrupted"):
            continue
        key = json.dumps(t.params, sort_keys=True, default=str)
        seen[key] = seen.get(key, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)
