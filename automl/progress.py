"""One study-level progress bar on the terminal (never one per trial), and one log line per trial."""

from __future__ import annotations

import logging
import math
import time
from typing import Optional

from automl.records import TrialRecord

trial_log = logging.getLogger("automl.trials")
#: Without a terminal, where a long trial is goes to the log at most this often.
LOG_EVERY_S = 30.0


class StudyProgress:
    """A tqdm bar over the trials of this invocation; hidden when stderr is not a terminal."""

    def __init__(self, n_trials: Optional[int], direction: str, metric: str, done: int = 0) -> None:
        """`done`: trials of this run that an earlier invocation finished (a continued run starts there)."""
        from tqdm.auto import tqdm

        self.metric, self.maximize = metric, direction == "maximize"
        self.best: Optional[float] = None
        self._logged = time.monotonic()
        self.bar = tqdm(total=n_trials, initial=done, desc="search", unit="trial", disable=None, leave=True,
                        bar_format=None if n_trials else "{desc}: {n_fmt} trials [{elapsed}{postfix}]")

    def note(self, text: str) -> None:
        """Where training is within a long trial (e.g. "trial 3: epoch 2, 40%"): the bar moves between trials."""
        best = f"best {self.metric} {self.best:.4f}; " if self.best is not None else ""
        if not self.bar.disable:
            self.bar.set_postfix_str(best + text, refresh=True)
        elif time.monotonic() - self._logged >= LOG_EVERY_S:  # no terminal (a log file, CI): a line now and then
            self._logged = time.monotonic()
            trial_log.info("%s", text)

    def trial_done(self, number: int, state: str, value: Optional[float], record: TrialRecord) -> None:
        if state == "COMPLETE" and value is not None and math.isfinite(value):
            if self.best is None or (value > self.best if self.maximize else value < self.best):
                self.best = value
        if self.best is not None:
            self.bar.set_postfix_str(f"best {self.metric} {self.best:.4f}", refresh=False)
        self.bar.update(1)
        log_trial(number, state, value, record)

    def close(self) -> None:
        self.bar.close()


def log_trial(number: int, state: str, value: Optional[float], record: TrialRecord) -> None:
    shown = f"{value:.5f}" if isinstance(value, float) and math.isfinite(value) else "-"
    detail = record.fail_reason or f"{record.family or '?'}, {record.epochs or '?'} epochs"
    trial_log.info("trial %d %s value %s (%s)", number, state.lower(), shown, detail)
