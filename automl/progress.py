"""One study-level progress bar on the terminal (never one per trial), and one log line per trial."""

from __future__ import annotations

import logging
import math
from typing import Optional

from automl.records import TrialRecord

trial_log = logging.getLogger("automl.trials")


class StudyProgress:
    """A tqdm bar over the trials of this invocation; hidden when stderr is not a terminal."""

    def __init__(self, n_trials: Optional[int], direction: str, metric: str) -> None:
        from tqdm.auto import tqdm

        self.metric, self.maximize = metric, direction == "maximize"
        self.best: Optional[float] = None
        self.bar = tqdm(total=n_trials, desc="search", unit="trial", disable=None, leave=True,
                        bar_format=None if n_trials else "{desc}: {n_fmt} trials [{elapsed}{postfix}]")

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
