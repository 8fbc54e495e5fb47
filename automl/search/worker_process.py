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
import fcntl
import json
import logging
import os
import pickle
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import Prepared

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
    counter: str


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


def claim(counter: str, limit: Optional[int], deadline: Optional[float]) -> bool:
    """Atomically take one trial from the budget shared by all workers (exact across processes)."""
    if deadline is not None and time.time() >= deadline:
        return False
    if limit is None:
        return True
    with open(counter, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        taken = int(fh.read().strip() or 0)
        if taken >= limit:
            return False
        fh.seek(0)
        fh.write(str(taken + 1))
        fh.truncate()
        return True


def _warm_imports() -> None:
    """What every trial needs, imported once before forking (torch.optim imports torch._dynamo lazily)."""
    import numpy  # noqa: F401
    import optuna  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401

    from automl.search import finalize, objective  # noqa: F401
    from automl.training import fast  # noqa: F401

    del torch


def run_worker(job: Job, index: int, host: "PluginHost") -> tuple[Any, Any]:
    """Run trials until the budget is spent; returns the search context and the study (for the zygote)."""
    import torch

    from automl.plan import resolve
    from automl.records import TrialRecord
    from automl.search.objective import Objective, SearchContext
    from automl.search.study import open_study
    from automl.training.device import choose_device

    cfg = job.cfg
    torch.set_num_threads(cfg.trainer.threads or max(1, (os.cpu_count() or 1) // job.n_workers))
    plan = resolve(cfg, host).plan(cfg, host, job.prepared.info)
    if plan.names != job.plan_names:  # the same environment must resolve the same plan; refuse to guess otherwise
        raise RuntimeError(f"worker resolved the search as {plan.names}, the host as {job.plan_names}")
    study = open_study(cfg.search, Path(job.run_dir), plan.objective.direction, cfg.seed, job.n_workers, index)
    ctx = SearchContext.build(cfg, host, plan, job.prepared, Path(job.run_dir),
                              choose_device(cfg.trainer.accelerator))
    objective = Objective(ctx)
    # The budget starts when trials can start, as with study.optimize(timeout=...) in one process.
    deadline = None if cfg.search.timeout is None else time.time() + cfg.search.timeout

    def on_trial(study: Any, trial: Any) -> None:
        emit("trial", number=trial.number, state=trial.state.name, value=trial.value,
             record=dataclasses.asdict(TrialRecord.of(trial)))
        host.notify("automl_trial_finished", trial=trial, run_dir=job.run_dir)

    while claim(job.counter, cfg.search.n_trials, deadline):
        remaining = None if deadline is None else max(0.0, deadline - time.time())
        study.optimize(objective, n_trials=1, timeout=remaining, callbacks=[on_trial])
    return ctx, study


def main() -> int:
    from automl.host import PluginHost

    root = logging.getLogger()
    root.handlers[:] = [_EventHandler()]
    root.setLevel(logging.INFO)
    logging.getLogger("optuna").setLevel(logging.WARNING)
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
        children = []
        for index in range(1, job.n_workers):
            pid = os.fork()
            if pid == 0:  # a sibling: search, then leave without running the zygote's cleanup
                code = 0
                try:
                    run_worker(job, index, host)
                except BaseException:  # noqa: BLE001
                    emit("error", message=traceback.format_exc(limit=3)[-1500:])
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)
        ctx, study = run_worker(job, 0, host)
        failed_children = 0
        for pid in children:
            _, status = os.waitpid(pid, 0)
            failed_children += os.waitstatus_to_exitcode(status) != 0
        from automl.search.finalize import finalize
        from automl.search.study import require_completed

        require_completed(study.get_trials(deepcopy=False))
        final = finalize(ctx, study)
        out = Path(request["job"]).with_name("final.json")
        # may exceed a pipe write: a file, then an event
        out.write_text(json.dumps({"final": final.to_json(), "failed_workers": failed_children}, default=str))
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
