"""The host side of a multi-process search: start the worker process early, hand it the job, follow it.

A `WorkerHandle` starts the zygote worker process (`automl.search.worker_process`) before the data is
loaded, so the worker's imports (torch, Optuna, plugins: about two seconds) overlap the host's reading and
preprocessing; the zygote forks its siblings itself when the job arrives. The host process never imports
torch.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from automl.errors import AutoMLError, ConfigError, DataError, PluginError
from automl.host import BUILTIN

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.search.worker_process import Job

log = logging.getLogger(__name__)

#: Workers started when `search.n_workers` is null: one per core, at most this many.
MAX_AUTO_WORKERS = 4
_USER_ERRORS = {"AutoMLError": AutoMLError, "ConfigError": ConfigError, "DataError": DataError,
                "PluginError": PluginError}


def resolve_workers(cfg: "RunConfig", host: "PluginHost") -> int:
    """0 = trials run in this process; N = N worker processes share the study."""
    wanted = cfg.search.n_workers
    if wanted == 0:
        return 0
    in_process = sorted(n for n, i in host.infos.items() if n != BUILTIN and i.distribution is None)
    if in_process or not hasattr(os, "fork"):
        if wanted is not None:
            reason = (f"plugins registered in-process ({', '.join(in_process)}) are invisible to worker processes"
                      if in_process else "this platform cannot fork worker processes")
            raise ConfigError(f"search.n_workers={wanted} is not possible: {reason}; use search.n_workers=0")
        return 0
    n = wanted if wanted is not None else min(os.cpu_count() or 1, MAX_AUTO_WORKERS)
    if cfg.search.n_trials is not None:
        n = min(n, cfg.search.n_trials)
    return max(1, n)


class WorkerHandle:
    """The host's handle on the zygote worker process, which forks its `n_workers - 1` siblings itself."""

    def __init__(self, n_workers: int = 1) -> None:
        self.n_workers = n_workers
        self.tmp = Path(tempfile.mkdtemp(prefix="automl-job-"))  # 0700: the prepared data never leaves it
        self.stderr = open(self.tmp / "worker.stderr", "w+b")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "automl.search.worker_process"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.submitted = False
        self.pids: set[int] = {self.proc.pid}

    def sized(self, n_workers: int) -> "WorkerHandle":
        """How many workers the zygote will be (it forks its siblings only when the job arrives)."""
        self.n_workers = n_workers
        return self

    def submit(self, job: "Job") -> None:
        path = self.tmp / "job.pkl"
        with open(path, "wb") as fh:
            pickle.dump(job, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._send({"job": str(path)})
        self.submitted = True

    def processes(self) -> set[str]:
        """The worker processes seen so far, named as trial records name them (host:pid)."""
        import socket

        return {f"{socket.gethostname()}:{pid}" for pid in self.pids}

    def request_stop(self, signum: int = 0) -> None:
        """Pass a stop request (Ctrl-C, SIGTERM) on to the workers: they record the trials they cut short and
        the zygote finalizes from the finished ones."""
        import signal

        from automl.stopping import FORWARDED

        if self.submitted and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if signum == signal.SIGTERM else FORWARDED)

    def kill(self) -> None:
        """A second Ctrl-C: the zygote dies at once; its siblings follow (they die with their parent)."""
        if self.proc.poll() is None:
            self.proc.kill()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AutoMLError(f"the search worker exited before it got its job: {self._stderr_tail()}") from None

    def follow(self, on_trial: Callable[[dict[str, Any]], None],
               on_progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
        """Relay events until the zygote's last word; returns it (`final`: the final model as JSON or None,
        `interrupted`, `exit_code`, `problems`, `lost`). A worker's user error is raised as that error; a
        zygote that dies is a problem reported in the result, so that the trials that finished are still
        written."""
        import signal

        assert self.proc.stdout is not None
        errors: list[dict[str, Any]] = []
        final: Optional[dict[str, Any]] = None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            kind = event.get("event")
            if "pid" in event:
                self.pids.add(int(event["pid"]))
            if kind == "trial":
                on_trial(event)
            elif kind == "progress" and on_progress is not None:
                on_progress(str(event.get("text", "")))
            elif kind == "log":
                logging.getLogger(event.get("name", "automl")).log(event.get("level", logging.INFO), event["message"])
            elif kind == "error":
                errors.append(event)
            elif kind == "final":  # the zygote's last word: its siblings are done, and so is it
                final = json.loads(Path(event["path"]).read_text())
                break
        code = self.proc.wait()
        for err in errors:
            if err.get("user_error"):
                raise _USER_ERRORS.get(err.get("kind"), AutoMLError)(err["message"])
        if final is None:
            if code < 0:  # killed by a signal: the finished trials are in the study, the rest is reported
                died = f"the search worker process {self.proc.pid} died (killed by {signal.Signals(-code).name})"
                log.error("%s: the trials that finished are kept", died)
                return {"final": None, "problems": [died], "lost": [], "exit_code": 1}
            detail = errors[0].get("message") if errors else self._stderr_tail() or f"exit code {code}"
            if errors and errors[0].get("traceback"):
                log.debug("worker traceback:\n%s", errors[0]["traceback"])
            raise AutoMLError(f"the search worker failed: {detail}. Finished trials are kept in the study; "
                              "run the same command again to continue (debug=true shows the traceback)")
        for err in errors:
            log.warning("a search worker failed and the others finished the search: %s", err.get("message"))
        return final

    def _stderr_tail(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        lines = [ln for ln in self.stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1][-500:] if lines else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            if not self.submitted:
                self.proc.kill()  # the run stopped before its search (bad input): the worker has nothing to do
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "WorkerHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
