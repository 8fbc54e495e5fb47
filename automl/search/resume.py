"""What "run the same command again" means for a study: finish the run a crash cut short, or start another.

The study records the current run of each run directory that searches it (`StudyRun`, in the study's user
attribute `automl:runs`, keyed by `run_key`: the run directory's own journal has one; a shared storage one per
machine and directory): how many trials it was asked for, whether it finished, and what it still has to try
first (the portfolio configurations of a new study, and the parameters of trials that were interrupted).
Every trial carries its run's key. Then:

- after a crash, Ctrl-C or SIGTERM, the same command *finishes that run*: the interrupted trials' parameters
  run again first (with their original seeds), and the run stops at the trial count it was asked for;
- after a run that finished, the same command *starts another* of `search.n_trials` more trials;
- processes on several machines sharing one study each run their own `search.n_trials`: the study's total is
  exactly their sum.

Decisions are taken under the `StudyLock`, so the processes of a run never both take its last trial and two
machines never both queue the portfolio. A trial counts toward its run once started (running, finished,
pruned, or failed on its own account); an *interrupted* trial (stopped by a signal or a dead process) does
not: its parameters are queued again instead, once (a re-run interrupted again is not queued a third time).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from automl.records import TrialRecord

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.specs import ModelFamily

log = logging.getLogger(__name__)

ATTR = "automl:runs"
#: The run key of a run directory's own journal: one run directory, one run at a time.
OWN = "own"


@dataclass
class StudyRun:
    """The study's current run (see the module docstring)."""

    #: 1 for the study's first run, then 2, 3...
    number: int = 1
    n_trials: Optional[int] = None
    #: Counted trials when the run began, and the count at which it is done (None: a time budget only).
    start: int = 0
    target: Optional[int] = None
    complete: bool = False
    #: Configurations to try before the sampler's own: the families' portfolios (a new study only).
    queue: list[dict[str, Any]] = field(default_factory=list)
    #: Interrupted trials to run again first: {"params": ..., "of": trial number}.
    reruns: list[dict[str, Any]] = field(default_factory=list)

    #: Which run directory it belongs to (`run_key`).
    key: str = OWN

    @classmethod
    def of(cls, study: "optuna.Study", key: str) -> Optional["StudyRun"]:
        raw = (study.user_attrs.get(ATTR) or {}).get(key)
        if not isinstance(raw, dict):
            return None
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def save(self, study: "optuna.Study") -> None:
        runs = dict(study.user_attrs.get(ATTR) or {})
        runs[self.key] = asdict(self)
        study.set_user_attr(ATTR, runs)


def run_key(storage_url: Optional[str], run_dir: Any) -> str:
    """The run's key in its study: `OWN` for the run directory's journal; this machine and run directory for a
    shared storage (several machines may use the same relative run_dir)."""
    from pathlib import Path

    return OWN if storage_url is None else f"{socket.gethostname()}:{Path(run_dir).resolve()}"


def process_name() -> str:
    """This process, as a trial's record names it (a trial left running by a dead process points to it)."""
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def counted(trials: Iterable[Any], key: str) -> int:
    """Trials that count toward run `key`'s total: its own, started, and not interrupted (see the module
    docstring)."""
    from optuna.trial import TrialState

    n = 0
    for t in trials:
        if t.state == TrialState.WAITING or t.user_attrs.get("run") != key:
            continue
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted"):
            continue
        n += 1
    return n


def begin_run(study: "optuna.Study", key: str, n_trials: Optional[int], families: list["ModelFamily"],
              info: Any) -> tuple[StudyRun, str]:
    """Continue this run directory's unfinished run, or begin a new one; returns it and a line that says which.
    Call under the `StudyLock`."""
    trials = study.get_trials(deepcopy=False)
    run = StudyRun.of(study, key)
    done = counted(trials, key)
    if run is not None and not run.complete and not run.reruns and run.target is not None and done >= run.target:
        run.complete = True  # its last record (the mark that it finished) was lost: it had finished
        run.save(study)
    if run is not None and not run.complete and run.n_trials == n_trials:
        reruns = f"; {len(run.reruns)} interrupted trial(s) run again first" if run.reruns else ""
        of = f"{done - run.start} of {n_trials}" if n_trials else f"{done - run.start}"
        return run, f"continuing the unfinished run {run.number} of this run directory: {of} trials done{reruns}"
    if run is not None and not run.complete:
        log.warning("run %d of this run directory was not finished (search.n_trials=%s, now %s): starting a new "
                    "run instead of finishing it", run.number, run.n_trials, n_trials)
    first = not trials and not study.user_attrs.get(ATTR)  # the study's very first run tries the portfolio
    new = StudyRun(number=run.number + 1 if run is not None else 1, n_trials=n_trials, start=done,
                   target=done + n_trials if n_trials is not None else None, key=key,
                   queue=portfolio(families, info, n_trials) if first else [],
                   reruns=run.reruns if run is not None else [])
    new.save(study)
    more = f"{n_trials} trials" if n_trials is not None else "trials until the time is up"
    if first:
        return new, f"new study: {more}"
    if run is None:
        return new, f"joining the study ({len(trials)} trials so far): {more} of this run's own"
    return new, f"the last run of this run directory finished ({len(trials)} trials in the study): {more} more"


def finish_run(study: "optuna.Study", key: str, deadline_passed: bool) -> bool:
    """Mark the run finished when its total is reached or its time is spent; returns whether it is. Call under
    the `StudyLock`, after the search; an interrupted run is left unfinished, for the same command to finish."""
    run = StudyRun.of(study, key)
    if run is None or run.complete:
        return True
    reached = run.target is not None and counted(study.get_trials(deepcopy=False), key) >= run.target
    if (reached or deadline_passed) and not run.reruns:
        run.complete = True
        run.save(study)
    return run.complete


def portfolio(families: list["ModelFamily"], info: Any, n_trials: Optional[int]) -> list[dict[str, Any]]:
    """A new study first tries every family once (its first published default, its `portfolio`, or a sampled
    configuration), then the families' other defaults, taking turns: a short search cannot miss an
    architecture and already ends with a good model. The sampler explores after them."""
    several = len(families) > 1
    lists = [(family.portfolio(info) if family.portfolio is not None else []) or [{}] for family in families]
    queue = [{**({"family": f.name} if several else {}), **p[i]}
             for i in range(max(map(len, lists))) for f, p in zip(families, lists) if i < len(p)]
    return [q for q in queue if q][: n_trials or len(queue)]


def ask(study: "optuna.Study", key: str, n: int,
        lead: Optional[Callable[["optuna.Trial"], Optional[dict[str, Any]]]] = None,
        shared: Optional[dict[str, Any]] = None) -> list["optuna.Trial"]:
    """Ask for `n` trials of run `key`: its interrupted trials again first, then its queued configurations,
    then the sampler's. With `lead`, the first of the sampler's trials leads the round: `lead(trial)` samples it
    and returns the parameters the round's other sampled trials take from it (they are enqueued with those
    fixed, so the sampler draws only the rest); `lead` returning None ends the round at that trial. With `shared`
    (a round's places refilled), only the sampler's trials, with `shared` fixed, and none while interrupted
    trials or queued configurations wait (they lead rounds of their own). Call under the `StudyLock`."""
    run = StudyRun.of(study, key)
    asked: list["optuna.Trial"] = []
    if shared is not None and run is not None and (run.reruns or run.queue):
        return asked
    while len(asked) < n:
        sampled = False
        if run is not None and run.reruns:
            rerun = run.reruns.pop(0)
            study.enqueue_trial(rerun["params"], user_attrs={"rerun_of": rerun["of"]})
        elif run is not None and run.queue:
            study.enqueue_trial(run.queue.pop(0))
        else:
            sampled = True
            if shared:
                study.enqueue_trial(shared)
        trial = study.ask()
        TrialRecord.note(trial, process=process_name(), run=key)
        asked.append(trial)
        if sampled and lead is not None and shared is None:
            shared = lead(trial)
            if shared is None:  # the leader trains alone
                break
    if run is not None and asked:
        run.save(study)
    return asked


def interrupt(study: "optuna.Study", trial_id: int, number: int, params: dict[str, Any], attrs: dict[str, Any],
              reason: str) -> None:
    """Record a trial cut short (a signal, a dead process) as failed with `reason` and queue its parameters to
    run again first, unless it was itself a re-run. Call under the `StudyLock`."""
    from optuna.exceptions import UpdateFinishedTrialError

    from optuna.trial import TrialState

    again = attrs.get("rerun_of") is None
    note = "; its parameters run again first" if again else "; not queued again (it was itself a re-run)"
    try:
        if study._storage.get_trial(trial_id).state.is_finished():
            return  # another process recorded it first (its own stop, a heartbeat check)
        TrialRecord.note_in_storage(study._storage, trial_id, interrupted=True,
                                    fail_reason=f"interrupted: {reason}{note}")
        study._storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return
    if again:
        _queue_again(study, attrs.get("run"), params, number)


def _queue_again(study: "optuna.Study", key: Optional[str], params: dict[str, Any], number: int) -> None:
    run = StudyRun.of(study, key) if key is not None else None
    if run is not None:
        run.reruns.append({"params": dict(params), "of": number})
        run.complete = False
        run.save(study)


def interrupt_running(study: "optuna.Study", reason: str, processes: Optional[set[str]] = None) -> list[int]:
    """Interrupt the trials left RUNNING (by `processes` only, when given: a shared study's other machines are
    alive); returns their numbers. Call under the `StudyLock`."""
    from optuna.trial import TrialState

    numbers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("process")
        if processes is not None and owner not in processes:
            continue
        interrupt(study, t._trial_id, t.number, t.params, t.user_attrs,
                  reason if processes is not None or not owner else f"{reason} ({owner})")
        numbers.append(t.number)
    return numbers


def fail_stale(study: "optuna.Study") -> list[int]:
    """Database storages: trials whose process stopped sending heartbeats (a process or machine died) are
    interrupted with that reason and queued again for their run. Optuna's own `fail_stale_trials` fails them
    first and leaves no way to record why, so this does the same before it. Call under the `StudyLock`."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    from automl.search.study import GRACE_S

    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    grace = getattr(getattr(storage, "_backend", storage), "grace_period", None) or GRACE_S
    numbers = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        trial = storage.get_trial(trial_id)
        owner = trial.user_attrs.get("process") or "another process"
        reason = f"no heartbeat from {owner} for {grace} s (the process or its machine died)"
        interrupt(study, trial_id, trial.number, trial.params, trial.user_attrs, reason)
        log.warning("trial %d: %s", trial.number, reason)
        numbers.append(trial.number)
    return numbers
