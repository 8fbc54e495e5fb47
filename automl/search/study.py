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


def journal_path(url: Optional[str], run_dir: Path) -> Optional[Path]:
    """The journal file a storage setting names (the run directory's by default), or None for a database URL."""
    if not url:
        return run_dir / JOURNAL
    return None if "://" in url else Path(url).expanduser()


def repair_journal(path: Path) -> None:
    """Cut a torn last record (a crash or a full disk mid-write) back to the last complete one before anything
    appends: Optuna skips a torn record on read, but a record appended after it makes the file unreadable from
    then on. The cut bytes are kept beside the journal. Only the process that owns the run may do this (workers
    of that run have not started writing yet)."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        data = fh.read()
        if not data or data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        side = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        side.write_bytes(data[keep:])
        fh.seek(keep)
        fh.truncate()
    log.warning("%s ended in a torn record (%d bytes, kept in %s): cut back to the last complete record; every "
                "finished trial before it is intact", path, len(data) - keep, side.name)


def make_storage(url: Optional[str], run_dir: Path) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = journal_path(url, run_dir)
    if journal is not None:
        return JournalStorage(JournalFileBackend(str(journal)))
    url = database_url(url)
    for attempt in range(6):
        try:
            # Heartbeats let a study notice a process that died mid-trial (on any machine): its trial is failed
            # with the reason and its parameters queued again (`automl.search.resume.fail_stale`).
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9, and relied on
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except Exception as exc:  # noqa: BLE001 - driver missing, server down, bad URL: one line for the user
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # Workers started together on a fresh database race to create Optuna's tables; the loser retries.
            if "duplicate key" in first or "already exists" in first:
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
                continue
            raise ConfigError(f"search.storage={redact(url)!r} cannot be opened: {redact(first, url)}") from None
    raise ConfigError(f"search.storage={redact(url)!r}: its tables could not be created (concurrent set-up)")


#: Seconds between a running trial's heartbeats in a database storage, and the silence after which another
#: process declares it dead.
HEARTBEAT_S, GRACE_S = 30, 120
#: The PostgreSQL drivers SQLAlchemy can use, in the order `postgresql://` tries them.
_PG_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))


def database_url(url: str) -> str:
    """`postgresql://` as the README writes it, bound to the driver that is installed (SQLAlchemy 2.1 assumes
    psycopg 3; `pip install 'vertical-automl[postgres]'` provides it, an older install may have psycopg2)."""
    import importlib.util

    scheme = url.split("://", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        return url
    for module, dialect in _PG_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{dialect}://" + url.split("://", 1)[1]
    raise ConfigError(f"search.storage={redact(url)!r} needs a PostgreSQL driver: pip install "
                      "'vertical-automl[postgres]' (psycopg 3)")


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


def sampler_seed(cfg: "SearchConfig", seed: int, worker_index: int) -> int:
    """The sampler's seed in this process. The run's own study: `seed` + the worker's index, so a search
    replays. A shared storage (`search.storage`): also a process-unique offset, logged, since processes on
    several machines that seeded alike would sample the same parameters."""
    if cfg.storage is None:
        return seed + worker_index
    offset = int.from_bytes(os.urandom(3), "little")
    log.info("sampler seed %d (seed %d + worker %d + offset %d of this process: processes sharing %s sample "
             "differently)", seed + worker_index + offset, seed, worker_index, offset, "the study")
    return seed + worker_index + offset


def make_sampler(cfg: "SearchConfig", seed: int, concurrent: bool) -> "optuna.samplers.BaseSampler":
    """`concurrent`: other processes may run trials of the study at the same time (constant liar). Constraints
    reach TPE through each trial's `set_constraint` (`automl.search.constraints`)."""
    import optuna

    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # group=True: the space is conditional (each family has its own parameters) and define-by-run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=seed, n_startup_trials=5, constant_liar=concurrent,
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


def open_study(cfg: "SearchConfig", run_dir: Path, directions: list[str], seed: int, n_workers: int = 1,
               worker_index: int = 0, owner: bool = False) -> "optuna.Study":
    """The run's study, created or loaded: one direction per objective (several: a multi-objective study, which
    Optuna cannot prune). `owner`: the run's own process, which repairs a torn journal first."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported by automl itself, one line each
    journal = journal_path(cfg.storage, run_dir)
    if owner and journal is not None:
        repair_journal(journal)
    try:
        study = optuna.create_study(
            storage=make_storage(cfg.storage, run_dir), sampler=optuna.samplers.RandomSampler(),
            pruner=make_pruner(cfg) if len(directions) == 1 else optuna.pruners.NopPruner(),
            study_name=cfg.study_name, directions=directions, load_if_exists=True,
        )
        # A continued study's sampler starts where the study is (its trial count joins the seed): seeded alike,
        # it would draw the configurations of its first run again.
        study.sampler = make_sampler(cfg, sampler_seed(cfg, seed + len(study.get_trials(deepcopy=False)),
                                                       worker_index), n_workers > 1 or cfg.storage is not None)
        return study
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:  # a journal damaged beyond its tail
        where = journal if journal is not None else redact(cfg.storage or "")
        raise DataError(f"the study in {where} cannot be read ({type(exc).__name__}: {str(exc)[:200]}): move it "
                        "aside to start a new study, or restore it from a copy") from None


def check_continuation(study: "optuna.Study", directions: list[str], metric: str, fingerprint: str,
                       where: str) -> None:
    """A study continued in the same run directory must search the same objective(s) on the same data."""
    attrs = study.user_attrs
    if "metric" not in attrs:
        study.set_user_attr("metric", metric)
        study.set_user_attr("fingerprint", fingerprint)
        return
    if attrs["metric"] != metric or [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(
            f"{where} holds a study that optimises {attrs['metric']!r}, not {metric!r}: use a new run_dir, or "
            f"search.metric={attrs['metric']} to continue it"
        )
    if attrs.get("fingerprint") != fingerprint:
        raise DataError(
            f"{where} holds a study run on other data or another split (seed, sizes): use a new run_dir to "
            "search this data, or the same data and settings to continue the study"
        )


def has_completed(trials: list[Any]) -> bool:
    from optuna.trial import TrialState

    return any(t.state == TrialState.COMPLETE for t in trials)


def require_completed(trials: list[Any], timeout: Optional[float] = None) -> None:
    """A search must leave at least one completed trial; otherwise one line with every reason it did not."""
    from optuna.trial import TrialState

    if any(t.state == TrialState.COMPLETE for t in trials):
        return
    started = [t for t in trials if t.state not in (TrialState.WAITING,)]
    if timeout is not None and all(t.state in (TrialState.WAITING, TrialState.PRUNED) for t in trials):
        raise AutoMLError(f"no trial finished within search.timeout={timeout:g} s ({len(started)} started; the search "
                          "leaves part of the budget to the final model): give it more time, or a trial budget "
                          "instead (search.n_trials=N search.timeout=null)")
    reasons = sorted({TrialRecord.of(t).fail_reason or TrialRecord.of(t).stopped or t.state.name.lower()
                      for t in started})
    raise AutoMLError(f"no trial completed ({len(started)} ran): {'; '.join(reasons)[:600]}")


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


class StudyLock:
    """Mutual exclusion among every process of every machine that shares a study, for the short moments that
    must not interleave: counting the study's trials and asking for new ones, deciding what a run continues.

    The run's journal (or any journal file): an flock on a file beside it. PostgreSQL: a session advisory
    lock keyed by the study's name. SQLite: an flock beside the database file. Other databases have none
    (logged once): concurrent processes may then overshoot `search.n_trials` by a few trials.
    """

    def __init__(self, cfg: "SearchConfig", run_dir: Path, storage: Any) -> None:
        import hashlib

        self.file: Optional[Path] = None
        self.engine: Any = None
        self.key = int.from_bytes(hashlib.sha256(f"automl:{cfg.study_name}".encode()).digest()[:8], "big") >> 1
        self._fh: Any = None
        self._conn: Any = None
        self._depth = 0
        journal = journal_path(cfg.storage, run_dir)
        if journal is not None:
            self.file = journal.with_name(journal.name + ".automl-lock")
            return
        backend = getattr(storage, "_backend", storage)
        engine = getattr(backend, "engine", None)
        dialect = engine.dialect.name if engine is not None else ""
        if dialect == "postgresql":
            self.engine = engine
        elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self.file = Path(engine.url.database + ".automl-lock")
        else:
            log.warning("search.storage=%s: no cross-process lock for this database; processes sharing the study "
                        "may start a few more trials than search.n_trials", redact(cfg.storage or ""))

    def __enter__(self) -> "StudyLock":
        self._depth += 1
        if self._depth > 1:  # re-entrant within one process
            return self
        if self.file is not None:
            self._fh = open(self.file, "a+")
            fcntl.flock(self._fh, fcntl.LOCK_EX)
        elif self.engine is not None:
            from sqlalchemy import text

            self._conn = self.engine.connect()
            self._conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth:
            return
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
        if self._conn is not None:
            from sqlalchemy import text

            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            finally:
                self._conn.close()
                self._conn = None


class Heartbeat:
    """Database storages: a thread tells the study every `HEARTBEAT_S` that this process's running trials are
    alive, so that another process can tell a dead one's trials apart (Optuna's `optimize` does this for its
    own trials; ask-and-tell leaves it to the caller). Nothing for storages without heartbeats."""

    def __init__(self, study: "optuna.Study") -> None:
        import threading

        from optuna.storages._heartbeat import is_heartbeat_enabled

        self.storage = study._storage
        self.ids: set[int] = set()
        self.enabled = is_heartbeat_enabled(self.storage)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, name="automl-heartbeat", daemon=True)
            self._thread.start()

    def add(self, trial_id: int) -> None:
        if self.enabled:
            with self._lock:
                self.ids.add(trial_id)
            self.storage.record_heartbeat(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self.ids.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock:
                ids = list(self.ids)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as exc:  # noqa: BLE001 - a lost connection must not kill the trial; logged
                    log.warning("heartbeat of a running trial not recorded: %s", str(exc).splitlines()[0][:200])

    def close(self) -> None:
        self._stop.set()
