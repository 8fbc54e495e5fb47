"""Interaction logs, in the host process: load, check, encode ids, order by time, split.

Rows end up sorted by (user, time, item id), so one user's interactions are one contiguous block and
`offsets[u]:offsets[u + 1]` is user u's history in time order. Splits are index arrays into those rows:
- implicit: leave-last-out per user; the last interaction is test, the second-to-last validation, the rest
  train (ties in time broken by item id), so every user's training rows are the start of their block;
- explicit: a seeded random split of the rating rows (the host's `split_rows`, not stratified).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import ConfigError, DataError

from automl_recommendation.datasets import DATASET_COLUMNS, DEFAULT_COLUMNS, Columns
from automl_recommendation.options import EXPLICIT, IMPLICIT, TASK_WORDS, RecommendationOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from automl.config import RunConfig
    from automl.plugins import PluginHost
    from automl.specs import DomainSpec

log = logging.getLogger(__name__)

#: Leave-last-out needs one training, one validation and one test interaction per evaluated user.
MIN_EVALUATED = 3


@dataclass
class Interactions:
    """Encoded interactions, sorted by (user, time, item id)."""

    name: str
    columns: Columns
    user: "np.ndarray"
    item: "np.ndarray"
    rating: Optional["np.ndarray"]
    offsets: "np.ndarray"
    user_ids: list[Any]
    item_ids: list[Any]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def resolve_task(word: str) -> str:
    try:
        return TASK_WORDS[word]
    except KeyError:
        raise ConfigError(f"domain.task={word!r} is not a recommendation task: use implicit (top-K from an "
                          "interaction log) or explicit (rating prediction)") from None


def read_source(cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec",
                frame: "pd.DataFrame | None") -> tuple["pd.DataFrame", str, Columns]:
    """The raw table, its name, and the column roles it comes with (before `domain.options` overrides)."""
    import pandas as pd

    from automl.data.sources import read_file

    if cfg.data.target:
        raise ConfigError("data.target is not used by the recommendation domain: name the columns with "
                          "domain.options.user_column / item_column / time_column / rating_column")
    if frame is not None:
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
        return frame, "dataframe", DEFAULT_COLUMNS
    if cfg.data.path:
        return read_file(cfg.data.path), Path(cfg.data.path).name, DEFAULT_COLUMNS
    name = cfg.dataset or domain.default_dataset
    if not name:
        raise DataError("no data given: pass data.path=FILE (user, item, timestamp[, rating] columns) or "
                        f"dataset=NAME (registered: {', '.join(host.datasets.names())})")
    spec = host.datasets.get(name)
    log.info("dataset %s: %s", spec.name, spec.description or spec.source)
    try:
        raw = spec.loader()
    except Exception as exc:  # noqa: BLE001 - a loader failure is reported with the dataset's name
        raise DataError(f"dataset {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    return raw, spec.name, DATASET_COLUMNS.get(spec.name, DEFAULT_COLUMNS)


def resolve_columns(known: Columns, options: RecommendationOptions) -> Columns:
    return Columns(
        user=options.user_column or known.user,
        item=options.item_column or known.item,
        time=options.time_column or known.time,
        rating=options.rating_column or known.rating,
    )


def encode(raw: "pd.DataFrame", name: str, columns: Columns, task: str) -> Interactions:
    """Check the columns the task needs, drop incomplete rows, encode ids, sort by (user, time, item)."""
    import numpy as np
    import pandas as pd

    roles = {"user": columns.user, "item": columns.item}
    if task == IMPLICIT or columns.time in raw.columns:
        roles["time"] = columns.time
    if task == EXPLICIT:
        roles["rating"] = columns.rating
    for role, col in roles.items():
        if col not in raw.columns:
            shown = ", ".join(map(str, raw.columns[:30]))
            raise DataError(f"{role} column {col!r} is not in table {name!r}: set domain.options.{role}_column="
                            f"COLUMN (columns: {shown})")
    table = raw[list(roles.values())].rename(columns={v: k for k, v in roles.items()})
    complete = table.notna().all(axis=1)
    if not complete.all():
        log.info("%s: %d rows with a missing %s dropped", name, int((~complete).sum()), "/".join(roles))
        table = table[complete]
    if table.empty:
        raise DataError(f"table {name!r} has no complete interaction (columns {', '.join(roles.values())})")
    if "time" in table:
        table["time"] = _orderable_time(table["time"], columns.time, name)
    if "rating" in table:
        if not pd.api.types.is_numeric_dtype(table["rating"]):
            raise DataError(f"rating column {columns.rating!r} of {name!r} is not numeric "
                            f"(dtype {table['rating'].dtype}): point domain.options.rating_column at the ratings")
    user, user_ids = pd.factorize(table["user"], sort=True)
    item, item_ids = pd.factorize(table["item"], sort=True)
    time = table["time"].to_numpy(dtype=np.float64) if "time" in table else np.zeros(len(table))
    order = np.lexsort((item, time, user))  # last key first: user, then time, then item id
    user, item = user[order].astype(np.int64), item[order].astype(np.int64)
    rating = table["rating"].to_numpy(dtype=np.float32)[order] if "rating" in table else None
    if task == IMPLICIT:  # a repeated (user, item) counts once, when it first happened
        first = ~pd.DataFrame({"u": user, "i": item}).duplicated().to_numpy()
        if not first.all():
            log.info("%s: %d repeated (user, item) interactions kept once, at their first time", name,
                     int((~first).sum()))
            user, item = user[first], item[first]
            rating = rating[first] if rating is not None else None
    counts = np.bincount(user, minlength=len(user_ids))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Interactions(name, columns, user, item, rating, offsets, user_ids.tolist(), item_ids.tolist())


def _orderable_time(values: "pd.Series", column: str, name: str) -> "pd.Series":
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    try:
        return pd.to_datetime(values).astype("int64").astype("float64")
    except (ValueError, TypeError):
        raise DataError(f"time column {column!r} of {name!r} holds neither numbers nor dates "
                        f"(e.g. {values.iloc[0]!r}): point domain.options.time_column at a timestamp") from None


def leave_last_out(data: Interactions, min_interactions: int) -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """Per user with enough history: last interaction test, second-to-last validation, the rest train."""
    import numpy as np

    least = max(MIN_EVALUATED, min_interactions)
    counts = np.diff(data.offsets)
    from_end = data.offsets[data.user + 1] - 1 - np.arange(len(data.user))
    evaluated = counts[data.user] >= least
    test = np.flatnonzero(evaluated & (from_end == 0))
    val = np.flatnonzero(evaluated & (from_end == 1))
    train = np.flatnonzero(~(evaluated & (from_end <= 1)))
    if not len(test):
        raise DataError(f"no user of {data.name!r} has {least} interactions, so none can be evaluated by "
                        "leave-last-out: lower domain.options.min_interactions (3 at least) or use more data")
    skipped = int((counts < least).sum())
    if skipped:
        log.info("%d users with fewer than %d interactions train the models but are not evaluated", skipped, least)
    return train, val, test


def fingerprint(task: str, data: Interactions, train: "np.ndarray", val: "np.ndarray", test: "np.ndarray") -> str:
    import hashlib
    import json

    h = hashlib.sha256(json.dumps([task, data.n_users, data.n_items]).encode())
    for part in (data.user, data.item, train, val, test) + ((data.rating,) if data.rating is not None else ()):
        h.update(part.tobytes())
    return h.hexdigest()[:16]
