"""The worker side of a multi-process search: what runs inside `python -m automl.search.worker_process`.

One worker process (the *zygote*) starts when the run starts and imports torch, Optuna and the installed
plugins while the host process is still loading and preprocessing the data. It then receives the job (the
prepared data), forks its siblings — which share every import for free — and each of them runs trials
against the run's study until the trial counter or the deadline says stop. The zygote waits for its
siblings and finalizes the best model. Trials are the study's: every worker reads and writes the same
storage, so the Optuna study stays the single source of truth. The host side is
`automl.search.worker_handle`.

Protocol: the host writes one JSON line on stdin (`{"job": "<path of the pickled job>"}`); workers write
JSON lines on stdout (`ready`, `trial`, `log`, `final`, `error` events), each in a single `os.write` of at
most PIPE_BUF bytes, so lines from several processes never interleave.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import Prepared
    from automl.stopping import StopRequest

PIPE_BUF = 4096


@dataclass
class Job:
    """Everything the workers need, written by the host into a private temporary folder."""

    cfg: "RunConfig"
    #: The plan as the host resolved it (`Plan.names`): a worker that resolves another one refuses to run.
    plan_names: dict[str, Any]
    prepared: "Prepared"
    run_dir: str
    n_workers: int
    #: The run's key in the study and the count of its trials at which it is done (`automl.search.resume`;
    #: None: a time budget only).
    run_key: str = "own"
    target: Optional[int] = None
    #: When trials stop starting and running ones stop training (a `time.time()`), or None.
    deadline: Optional[float] = None


def emit(event: str, **payload: Any) -> None:
    """One event as one JSON line; long strings are shortened so the line stays atomic on the pipe."""
    record = {"event": event, "pid": os.getpid(), **payload}
    data = (json.dumps(record, default=str) + "\n").encode()
    while len(data) > PIPE_BUF:
        key = max((k for k, v in record.items() if isinstance(v, str)), key=lambda k: len(record[k]), default=None)
        if key is None or len(record[key]) < 64:
            record = {"event": event, "pid": os.getpid(), "truncated": True}
        else:
            record[key] = "..." + record[key][-(len(record[key]) // 2):]
        data = (json.dumps(record, default=str) + "\n").encode()
    os.write(1, data)


class _EventHandler(logging.Handler):
    """Worker log records travel to the host, which writes them to its console and log file."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            emit("log", level=record.levelno, name=record.name, message=record.getMessage()[:2000])
        except Exception:  # noqa: BLE001 - logging must never take a worker down
            pass


def _warm_imports() -> None:
    """What every trial needs, imported once before forking."""
    import numpy  # noqa: F401
    import optuna  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch

    from automl.search import context, finalize, trials  # noqa: F401
    from automl.training import fast, vectorised  # noqa: F401

    del torch


def run_worker(job: Job, index: int, host: "PluginHost", stop: "StopRequest") -> tuple[Any, Any, Optional[Any]]:
    """Run trials until the budget is spent or a stop is requested; returns the search context, the study and
    the `Interrupted` that stopped it (None: the budget ended the search)."""
    import torch

    from automl.errors import Interrupted
    from automl.plan import resolve
    from automl.records import TrialRecord
    from automl.search.context import SearchContext, run_end
    from automl.search.study import StudyLock, open_study
    from automl.search.trials import Budget, round_plan, run_trials
    from automl.training.device import choose_device

    emit("started", index=index)
    cfg = job.cfg
    torch.set_num_threads(cfg.trainer.threads or max(1, (os.cpu_count() or 1) // job.n_workers))
    plan = resolve(cfg, host).plan(cfg, host, job.prepared.info)
    if plan.names != job.plan_names:  # the same environment must resolve the same plan; refuse to guess otherwise
        raise RuntimeError(f"worker resolved the search as {plan.names}, the host as {job.plan_names}")
    study = open_study(cfg.search, Path(job.run_dir), plan.directions, cfg.seed, job.n_workers, index)
    device = choose_device(cfg.trainer.accelerator)
    ctx = SearchContext.build(cfg, host, plan, job.prepared, Path(job.run_dir), device)
    ctx.finish_by = run_end(cfg.search.timeout, job.deadline)

    def on_trial(study: Any, trial: Any) -> None:
        emit("trial", number=trial.number, state=trial.state.name, value=trial.values[0] if trial.values else None,
             record=dataclasses.asdict(TrialRecord.of(trial)))
        host.notify("automl_trial_finished", trial=trial, run_dir=job.run_dir)

    rounds = round_plan(cfg.search.batch, device, cfg.search.n_trials, job.n_workers)
    budget = Budget(job.run_key, job.target, job.deadline, StudyLock(cfg.search, Path(job.run_dir), study._storage), stop,
                    job.n_workers)
    try:
        run_trials(ctx, study, budget, rounds, on_trial, lambda text: emit("progress", text=text))
    except Interrupted as exc:
        return ctx, study, exc
    return ctx, study, None


def _dead_siblings(children: list[int]) -> list[str]:
    """Wait for the siblings; one line for each that did not end well (killed by a signal, or an error)."""
    import signal

    problems = []
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            problems.append(f"search worker process {pid} died (killed by {signal.Signals(sig).name}) mid-search")
        elif os.waitstatus_to_exitcode(status) != 0:
            problems.append(f"search worker process {pid} ended with an error (exit code "
                            f"{os.waitstatus_to_exitcode(status)})")
    return problems


def main() -> int:
    from automl.host import PluginHost
    from automl.stopping import StopRequest, worker_signals

    root = logging.getLogger()
    root.handlers[:] = [_EventHandler()]
    root.setLevel(logging.INFO)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    stop = StopRequest()
    children: list[int] = []
    worker_signals(stop, children)  # before anything slow: a stop may come at any time
    parent = os.getppid()
    try:
        _warm_imports()
        host = PluginHost.installed()
        emit("ready")
        request = json.loads(sys.stdin.readline() or "{}")
        if "job" not in request:
            return 0  # the host decided not to search (e.g. bad input): nothing to do
        with open(request["job"], "rb") as fh:
            job: Job = pickle.load(fh)  # our own host's private handoff, in a 0700 temporary folder
        os.unlink(request["job"])  # the prepared rows now live in memory only, whatever happens to the host
        from automl.training.engine import make_engine

        make_engine(job.cfg.trainer.engine).prepare_process(
            [host.model_families.get(n) for n in job.plan_names["families"]])
        for index in range(1, job.n_workers):
            pid = os.fork()
            if pid == 0:  # a sibling: search, then leave without running the zygote's cleanup
                code = 0
                try:
                    children.clear()
                    worker_signals(stop)  # a sibling dies with the zygote, and stops when it is told to
                    run_worker(job, index, host, stop)
                except BaseException:  # noqa: BLE001
                    emit("error", message=traceback.format_exc(limit=3)[-1500:])
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)
        ctx, study, interrupted = run_worker(job, 0, host, stop)
        problems = _dead_siblings(children)
        if os.getppid() != parent:  # the automl process is gone: no one to hand a model to
            return 1
        from automl.search.resume import interrupt_running, process_name
        from automl.search.study import StudyLock, has_completed, require_completed

        lost: list[int] = []
        if problems:  # a dead sibling's trials are lost: recorded, and run again by the same command
            siblings = {f"{process_name().rsplit(':', 1)[0]}:{pid}" for pid in children}
            with StudyLock(job.cfg.search, Path(job.run_dir), study._storage):
                lost = interrupt_running(study, "its worker process died", siblings)
            if lost:
                problems.append(f"trial(s) {', '.join(map(str, lost))} were lost with it (recorded as interrupted; "
                                "the same command runs them again)")
        final = None
        trials = study.get_trials(deepcopy=False)
        if interrupted is None or has_completed(trials):
            from automl.search.finalize import finalize

            require_completed(trials, job.cfg.search.timeout)
            final = finalize(ctx, study).to_json()
        out = Path(request["job"]).with_name("final.json")
        # may exceed a pipe write: a file, then an event
        out.write_text(json.dumps({
            "final": final, "problems": problems, "lost": lost,
            "interrupted": interrupted.reason if interrupted is not None else None,
            "exit_code": interrupted.exit_code if interrupted is not None else 0,
        }, default=str))
        emit("final", path=str(out))
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported to the host, which decides how to tell the user
        from automl.errors import AutoMLError

        if isinstance(exc, AutoMLError):
            emit("error", message=str(exc), user_error=True, kind=type(exc).__name__)
        else:
            emit("error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:])
        return 1


if __name__ == "__main__":
    code = main()
    # Everything is written (study, predictor, final.json): skip the interpreter's teardown, which with torch
    # and scikit-learn loaded costs over a second, every run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
