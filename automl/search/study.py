"""One Optuna study per run: sampler, pruner, storage, and continuing a study that is already there.

The default storage is a journal file in the run directory (`study.journal`): file-backed, safe for several
worker processes, about 10x cheaper per trial than SQLite. Any Optuna storage URL works instead
(`search.storage=postgresql://...` lets workers on several machines share one study).
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError, ConfigError, DataError
from automl.records import TrialRecord

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from automl.config import SearchConfig

log = logging.getLogger(__name__)

JOURNAL = "study.journal"


def make_storage(url: Optional[str], run_dir: Path) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not url:
        return JournalStorage(JournalFileBackend(str(run_dir / JOURNAL)))
    if "://" not in url:  # a path: a journal file somewhere else (a shared file system)
        return JournalStorage(JournalFileBackend(str(Path(url).expanduser())))
    for attempt in range(6):
        try:
            # Heartbeats let a study notice a worker that died mid-trial and fail that trial.
            return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
        except Exception as exc:  # noqa: BLE001 - driver missing, server down, bad URL: one line for the user
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # Workers started together on a fresh database race to create Optuna's tables; the loser retries.
            if "duplicate key" in first or "already exists" in first:
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
                continue
            raise ConfigError(f"search.storage={redact(url)!r} cannot be opened: {redact(first, url)}") from None
    raise ConfigError(f"search.storage={redact(url)!r}: its tables could not be created (concurrent set-up)")


def _password(url: str) -> Optional[str]:
    if "@" in url and "://" in url:
        creds = url.split("://", 1)[1].rsplit("@", 1)[0]
        if ":" in creds:
            return creds.split(":", 1)[1] or None
    return None


def redact(text: str, url: Optional[str] = None) -> str:
    """`text` with the password of a storage URL (`url`, or `text` itself) replaced by ***, before it reaches a
    message, a log or a file."""
    secret = _password(url if url is not None else text)
    return text.replace(f":{secret}@", ":***@").replace(secret, "***") if secret else text


def redact_files(folder: Path, url: Optional[str]) -> None:
    """Hydra records the overrides and the composed config in `folder` (`.hydra/`) before a run starts: a
    storage URL's password is replaced there too."""
    if not url or _password(url) is None or not folder.is_dir():
        return
    for path in folder.glob("*.yaml"):
        text = path.read_text()
        if _password(url) in text:
            path.write_text(redact(text, url))


def make_sampler(cfg: "SearchConfig", seed: int, n_workers: int) -> "optuna.samplers.BaseSampler":
    import optuna

    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # group=True: the space is conditional (each family has its own parameters) and define-by-run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=seed, n_startup_trials=5, constant_liar=n_workers > 1,
        )


def make_pruner(cfg: "SearchConfig") -> "optuna.pruners.BasePruner":
    import optuna

    if cfg.pruner == "median":
        base = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    elif cfg.pruner == "halving":
        base = optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    else:
        return optuna.pruners.NopPruner()
    from automl.search.pruning import FamilyPruner

    return FamilyPruner(base)


def enqueue_each_family(study: "optuna.Study", families: list[str], n_trials: Optional[int]) -> None:
    """A new study tries each family once first, so a short search cannot miss an architecture."""
    if len(families) < 2 or study.trials:
        return
    for name in families[: n_trials or len(families)]:
        study.enqueue_trial({"family": name})


def open_study(cfg: "SearchConfig", run_dir: Path, direction: str, seed: int, n_workers: int = 1,
               worker_index: int = 0) -> "optuna.Study":
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported by automl itself, one line each
    return optuna.create_study(
        storage=make_storage(cfg.storage, run_dir), sampler=make_sampler(cfg, seed + worker_index, n_workers),
        pruner=make_pruner(cfg), study_name=cfg.study_name, direction=direction, load_if_exists=True,
    )


def check_continuation(study: "optuna.Study", direction: str, metric: str, fingerprint: str, where: str) -> None:
    """A study continued in the same run directory must search the same objective on the same data."""
    attrs = study.user_attrs
    if "metric" not in attrs:
        study.set_user_attr("metric", metric)
        study.set_user_attr("fingerprint", fingerprint)
        return
    if attrs["metric"] != metric or study.direction.name.lower() != direction:
        raise ConfigError(
            f"{where} holds a study that optimises {attrs['metric']!r}, not {metric!r}: use a new run_dir, or "
            f"search.metric={attrs['metric']} to continue it"
        )
    if attrs.get("fingerprint") != fingerprint:
        raise DataError(
            f"{where} holds a study run on other data or another split (seed, sizes): use a new run_dir to "
            "search this data, or the same data and settings to continue the study"
        )


def fail_interrupted_trials(study: "optuna.Study") -> int:
    """Trials left RUNNING by a process that died cannot finish: record them as failed, with the reason."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        TrialRecord.note_in_storage(study._storage, t._trial_id,
                                    fail_reason="interrupted: the process stopped mid-trial")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    if stale:
        log.info("marked %d trial(s) interrupted by an earlier run as failed", len(stale))
    return len(stale)


def require_completed(trials: list[Any]) -> None:
    """A search must leave at least one completed trial; otherwise one line with every reason it did not."""
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in trials):
        reasons = sorted({TrialRecord.of(t).fail_reason or t.state.name.lower() for t in trials})
        raise AutoMLError(f"no trial completed ({len(trials)} ran): {'; '.join(reasons)[:600]}")


class RunLock:
    """One automl process per run directory at a time (workers of that process excepted)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.fd: Optional[int] = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise ConfigError(f"another automl process is running in {self.path.parent}: wait for it, or use "
                              "another run_dir") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
