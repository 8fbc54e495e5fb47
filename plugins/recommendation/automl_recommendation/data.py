"""Interaction logs, in the host process: check, encode ids, order by time, split.

The host resolves the data source (a registered dataset, `data.path`, a DataFrame) into a table; here its
columns get their roles (user, item, time, rating) and the rows are encoded.

Rows end up sorted by (user, time, item id), so one user's interactions are one contiguous block and
`offsets[u]:offsets[u + 1]` is user u's history in time order. Splits are index arrays into those rows:
- implicit: leave-last-out per user; the last interaction is test, the second-to-last validation, the rest
  train (ties in time broken by item id), so every user's training rows are the start of their block;
- explicit: a seeded random split of the rating rows (the host's `split_rows`, not stratified).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from automl.api import ConfigError, DataError

from automl_recommendation.datasets import DATASET_COLUMNS, DEFAULT_COLUMNS, Columns
from automl_recommendation.options import EXPLICIT, IMPLICIT, TASK_WORDS, RecommendationOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from automl.api import RunConfig, Table

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


def source_columns(table: "Table", cfg: "RunConfig") -> Columns:
    """The column roles the host's table comes with: a registered dataset's own, or the defaults for a file
    or DataFrame of the user's (before `domain.options` overrides)."""
    if cfg.data.target:
        raise ConfigError("data.target is not used by the recommendation domain: name the columns with "
                          "domain.options.user_column / item_column / time_column / rating_column")
    return DATASET_COLUMNS.get(table.dataset, DEFAULT_COLUMNS) if table.dataset else DEFAULT_COLUMNS


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
