"""How a run stops early: Ctrl-C and SIGTERM (what systemd and Docker send) stop it once, politely; a second
Ctrl-C stops it at once.

A signal only sets a `StopRequest`. Training loops, trial rounds and the search poll it at safe points (every
few steps, each epoch, each round) and raise `automl.errors.Interrupted` there, so a stop never tears a write
in half: the trials it cut short are recorded as interrupted (and queued to run again), then the leaderboard,
the metrics and the predictor are written from the trials that finished. The same command continues the run.

In a multi-process search the automl process owns the decision: worker processes ignore the terminal's
SIGINT (it reaches the whole process group at once) and stop when the automl process forwards the request
(SIGTERM as itself, Ctrl-C as SIGUSR1, since they ignore SIGINT), when they get SIGTERM themselves, or when the process that started them dies (Linux's parent-death
signal), so no worker outlives its run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Callable, Optional

from automl.errors import Interrupted

log = logging.getLogger(__name__)

#: How a worker is asked to stop by the process that started it, and how it learns that process died.
FORWARDED, ORPHANED = signal.SIGUSR1, signal.SIGUSR2
_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", FORWARDED: "Ctrl-C (SIGINT)",
          ORPHANED: "the process that started this worker died"}
#: The exit code a stop by each signal ends with (a forwarded Ctrl-C is still a Ctrl-C).
_CODES = {FORWARDED: 128 + signal.SIGINT}


class StopRequest:
    """Why the run was asked to stop (None: it was not); `check()` raises `Interrupted` once it was."""

    def __init__(self) -> None:
        self.reason: Optional[str] = None
        self.exit_code = 130

    def set(self, reason: str, exit_code: int = 130) -> None:
        if self.reason is None:
            self.reason, self.exit_code = reason, exit_code

    def __bool__(self) -> bool:
        return self.reason is not None

    def check(self) -> None:
        if self.reason is not None:
            raise Interrupted(self.reason, self.exit_code)

    def error(self) -> Interrupted:
        return Interrupted(self.reason or "stopped", self.exit_code)


class StopSignals:
    """While active (main thread only), the first SIGINT or SIGTERM sets `stop` and calls `forward(signum)`
    (a multi-process search passes the request on to its workers); the second calls `force()` and leaves the
    process at once with 128 + the signal's number. Previous handlers come back on exit."""

    def __init__(self, stop: StopRequest, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.stop, self.signals = stop, signals
        self.forward: Optional[Callable[[int], None]] = None
        self.force: Optional[Callable[[], None]] = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop:
            if self.force is not None:
                self.force()
            os._exit(128 + signum)
        self.stop.set(_NAMES.get(signum, signal.Signals(signum).name), 128 + signum)
        log.warning("%s: stopping; trials cut short are recorded as interrupted and the files are written from "
                    "the finished ones (press Ctrl-C again to quit at once)", self.stop.reason)
        if self.forward is not None:
            self.forward(signum)


def worker_signals(stop: StopRequest, children: Optional[list[int]] = None) -> None:
    """A worker process: ignore the terminal's SIGINT (the automl process decides), stop on SIGTERM or a
    forwarded request, passing it on to `children` (the zygote's siblings), and get SIGTERM when the process
    that started this one dies."""

    def handle(signum: int, frame: Any) -> None:
        stop.set(_NAMES.get(signum, signal.Signals(signum).name), _CODES.get(signum, 128 + signum))
        for pid in children or []:
            try:
                os.kill(pid, signal.SIGTERM if signum == signal.SIGTERM else FORWARDED)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, FORWARDED, ORPHANED):
        signal.signal(signum, handle)
    parent = os.getppid()
    stop_with_parent()
    if os.getppid() != parent:  # it died before the request was in place
        handle(ORPHANED, None)


def stop_with_parent() -> None:
    """Linux: signal this process (ORPHANED) when its parent dies (PR_SET_PDEATHSIG), so no worker outlives its
    run; elsewhere a worker notices the closed pipe instead."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(ORPHANED))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
