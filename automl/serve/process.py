"""`served(run_dir)`: `automl serve` in a child process, ready when it answers /health; stopped on exit.

For tests and benchmarks that talk to the service over real HTTP, as a client would, and for notebooks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional, Sequence

from automl.errors import AutoMLError

#: The environment variable the child reads its API key from (`--api-key-env`).
KEY_VARIABLE = "AUTOML_SERVE_KEY"


def free_port() -> int:
    """A port free on the loopback interface now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(run_dir: str | Path, *, api_key: Optional[str] = None, args: Sequence[str] = (),
           log: Optional[Path] = None, timeout_s: float = 120.0, exe: Optional[str] = None) -> Iterator[str]:
    """Start `automl serve run_dir` on a free loopback port; yields its base URL ("http://127.0.0.1:PORT")."""
    port = free_port()
    exe = exe or str(Path(sys.executable).with_name("automl"))
    cmd = [exe, "serve", str(run_dir), "--port", str(port), *args]
    env = dict(os.environ)
    if api_key:
        env[KEY_VARIABLE] = api_key
        cmd += ["--api-key-env", KEY_VARIABLE]
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, proc, timeout_s, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()


def _wait(base: str, proc: subprocess.Popen, timeout_s: float, log: Optional[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise AutoMLError(f"automl serve exited with code {proc.returncode} before answering: {tail.strip()}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AutoMLError(f"automl serve did not answer {base}/health within {timeout_s:.0f} s")
