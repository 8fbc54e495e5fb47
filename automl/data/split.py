"""Seeded, stratified splits: train / validation / test, and repeated k-fold for small data.

The test split is carved first with `train_test_split(..., test_size, stratify=y, random_state=seed)`, the
validation split from what remains the same way, so a baseline that splits the same frame with the same call
sees exactly the same test rows. `test_size=0` keeps no test rows: for a user who holds out rows of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class Split:
    train: "np.ndarray"
    val: "np.ndarray"
    test: "np.ndarray"

    @property
    def development(self) -> "np.ndarray":
        """Train + validation, in row order: what cross-validation folds are drawn from."""
        import numpy as np

        return np.sort(np.concatenate([self.train, self.val]))


def split_rows(y: "np.ndarray", test_size: float, val_size: float, seed: int, stratify: bool,
               groups: Optional["np.ndarray"] = None) -> Split:
    import numpy as np
    from sklearn.model_selection import train_test_split

    if test_size == 0:  # the user holds out test rows of their own: every row is for training and validation
        dev = np.arange(len(y))
        if groups is not None:
            train, val = _group_split(dev, y, groups, val_size, seed, stratify)
        else:
            train, val = train_test_split(dev, test_size=val_size, stratify=y if stratify else None,
                                          random_state=seed)
        return Split(train=train, val=val, test=np.zeros(0, dtype=dev.dtype))
    if groups is not None:
        dev, test = _group_split(np.arange(len(y)), y, groups, test_size, seed, stratify)
        train, val = _group_split(dev, y, groups, val_size, seed, stratify)
        return Split(train=train, val=val, test=test)
    idx = np.arange(len(y))
    strat = y if stratify else None
    dev, test = train_test_split(idx, test_size=test_size, stratify=strat, random_state=seed)
    strat_dev = y[dev] if stratify else None
    train, val = train_test_split(dev, test_size=val_size, stratify=strat_dev, random_state=seed)
    return Split(train=train, val=val, test=test)


def _group_split(rows: "np.ndarray", y: "np.ndarray", groups: "np.ndarray", size: float, seed: int,
                 stratify: bool) -> tuple["np.ndarray", "np.ndarray"]:
    """Hold out about `size` of `rows`, whole groups at a time (stratified by class where asked)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_splits = max(2, round(1 / size))
    if stratify:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    keep, held = next(splitter.split(rows, y[rows] if stratify else None, groups[rows]))
    return rows[keep], rows[held]


def cv_folds(
    y: "np.ndarray", rows: "np.ndarray", folds: int, repeats: int, seed: int, stratify: bool,
    groups: Optional["np.ndarray"] = None,
) -> list[tuple["np.ndarray", "np.ndarray"]]:
    """(train_rows, val_rows) pairs of repeated (stratified, grouped where asked) k-fold over `rows`."""
    from sklearn.model_selection import GroupKFold, RepeatedKFold, RepeatedStratifiedKFold, StratifiedGroupKFold

    if groups is not None:
        out = []
        for r in range(repeats):
            grouped = (StratifiedGroupKFold if stratify else GroupKFold)(
                n_splits=folds, shuffle=True, random_state=seed + r)
            target = y[rows] if stratify else None
            out += [(rows[a], rows[b]) for a, b in grouped.split(rows, target, groups[rows])]
        return out

    splitter = (RepeatedStratifiedKFold if stratify else RepeatedKFold)(
        n_splits=folds, n_repeats=repeats, random_state=seed
    )
    target: Optional["np.ndarray"] = y[rows] if stratify else None
    return [(rows[a], rows[b]) for a, b in splitter.split(rows, target)]
