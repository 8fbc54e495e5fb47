"""The host's tabular pipeline: binary, multiclass and regression on one table.

`TabularPipeline.prepare` checks the host's table, splits it (seeded, stratified, grouped where asked),
fits the preprocessing on the training rows and returns numpy arrays; `TabularData` (what `bind` returns)
holds them as tensors on the training device; `automl.tabular.predictor.TabularFormat` saves and loads the
final model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Iterator, Optional

from automl.pipeline import DeviceData, Pipeline, Prepared, predict_in_batches
from automl.records import DataSummary
from automl.tabular.families import TabularInfo
from automl.tabular.objective import network_penalty, outputs_to_scores, tabular_loss
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import torch

    from automl.config import RunConfig
    from automl.pipeline import PredictorFormat, Table

log = logging.getLogger(__name__)

BATCH_SIZES = (64, 128, 256, 512, 1024)


class TabularPipeline(Pipeline):
    """Tables with a target column. `search_class_weight` adds class weighting as a searched option."""

    name = "tabular"

    def __init__(self, search_class_weight: bool = False) -> None:
        self.search_class_weight = search_class_weight

    # -- preparation (host process) ----------------------------------------------------------------------

    def prepare(self, table: "Table", cfg: "RunConfig") -> Prepared:
        import numpy as np

        from automl.data.checks import check_table
        from automl.data.split import cv_folds, split_rows
        from automl.tabular.preprocessing import TabularPreprocessor

        checked = check_table(table)
        task, y_raw = checked.task, checked.target
        if task == BINARY:
            y = (y_raw == checked.positive_class).to_numpy(dtype=np.float32, copy=True)
        elif task == MULTICLASS:
            lookup = {c: i for i, c in enumerate(checked.classes)}
            y = y_raw.map(lookup).to_numpy(dtype=np.int64, copy=True)
        else:
            y = y_raw.to_numpy(dtype=np.float64, copy=True)
        classification = task != REGRESSION
        groups = checked.groups.to_numpy() if checked.groups is not None else None
        split = split_rows(y, cfg.data.test_size, cfg.data.val_size, cfg.seed, stratify=classification,
                           groups=groups)

        pre = TabularPreprocessor(checked.numeric, checked.categorical).fit(checked.features.iloc[split.train])
        x_num, x_cat = pre.transform(checked.features)
        state: dict[str, Any] = {
            "preprocessor": pre,
            "target": table.target,
            "task": task,
            "classes": checked.classes,
            "positive_class": checked.positive_class,
            "columns": {c: str(checked.features[c].dtype) for c in checked.features.columns},
        }
        if task == REGRESSION:
            mean, std = float(y[split.train].mean()), float(y[split.train].std() or 1.0)
            state.update(y_mean=mean, y_std=std)
            y_train_space = ((y - mean) / std).astype(np.float32)
        else:
            y_train_space = y
        n_classes = len(checked.classes) if task == MULTICLASS else (2 if task == BINARY else 0)
        info = TabularInfo(
            task=task, n_train=len(split.train), n_num=int(x_num.shape[1]), cardinalities=pre.cardinalities,
            n_outputs=n_classes if task == MULTICLASS else 1, n_classes=n_classes,
        )
        folds = None
        n_dev = len(split.train) + len(split.val)
        if n_dev + len(split.test) < cfg.search.cv.below_rows:
            folds = cv_folds(y, split.development, cfg.search.cv.folds, cfg.search.cv.repeats, cfg.seed,
                             stratify=classification, groups=groups)
            log.info("%d rows (< search.cv.below_rows=%d): each trial is scored by %d x %d-fold cross-validation "
                     "on the %d development rows", n_dev + len(split.test), cfg.search.cv.below_rows,
                     cfg.search.cv.repeats, cfg.search.cv.folds, n_dev)
        log.info("%s: %d rows (train %d, validation %d, test %d), %d numeric and %d categorical features, task %s",
                 table.name, len(y), len(split.train), len(split.val), len(split.test), len(checked.numeric),
                 len(checked.categorical), task)
        fingerprint = _fingerprint(checked.features.columns, table.target, task, split, y)
        validation = (f"{cfg.search.cv.repeats} x {cfg.search.cv.folds}-fold cross-validation on the {n_dev} "
                      "development rows (train + validation)" if folds else
                      f"one validation split of {len(split.val)} rows")
        summary = DataSummary(
            source=table.name, rows=len(y), task=task, target=table.target,
            features={"numeric": list(checked.numeric), "categorical": list(checked.categorical)},
            classes={str(c): int(n) for c, n in checked.target.value_counts().items()} if classification else None,
            positive_class=checked.positive_class, dropped=dict(checked.dropped), dropped_rows=checked.dropped_rows,
            sensitive=list(table.sensitive), validation=validation,
            split={"train": len(split.train), "validation": len(split.val), "test": len(split.test)},
        )
        return Prepared(
            info=info,
            arrays={"x_num": x_num, "x_cat": x_cat, "y": y_train_space, "y_raw": y.astype(np.float64)},
            train=split.train, val=split.val, test=split.test, folds=folds, state=state,
            side={k: v.to_numpy() for k, v in checked.side.items()}, fingerprint=fingerprint, summary=summary,
        )

    def stopping_metric(self, info: TabularInfo) -> Optional[str]:
        """Log loss for classification: a proper scoring rule keeps improving while ROC AUC plateaus."""
        return "log_loss" if info.task in (BINARY, MULTICLASS) else None

    def training_space(self, trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
        sizes = [b for b in BATCH_SIZES if b <= max(BATCH_SIZES[0], info.n_train // 4)]
        hp = {
            "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", sizes),
        }
        if self.search_class_weight and info.task in (BINARY, MULTICLASS):
            hp["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
        return hp

    # -- where trials run, and the saved model -----------------------------------------------------------

    def bind(self, prepared: Prepared, device: "torch.device") -> "TabularData":
        return TabularData(prepared, device)

    def predictor_format(self) -> "PredictorFormat":
        from automl.tabular.predictor import TabularFormat

        return TabularFormat()


class TabularData(DeviceData):
    """The prepared table on the training device: `x_num`, `x_cat` and `y` as tensors, moved once."""

    def __init__(self, prepared: Prepared, device: "torch.device") -> None:
        import numpy as np
        import torch

        super().__init__(prepared, device)
        a, info = prepared.arrays, prepared.info
        self.task = info.task
        self.y_mean, self.y_std = prepared.state.get("y_mean", 0.0), prepared.state.get("y_std", 1.0)
        self.x_num = torch.as_tensor(a["x_num"], device=device)
        self.x_cat = torch.as_tensor(a["x_cat"], device=device)
        self.y = torch.as_tensor(a["y"], device=device)
        self.class_weight = None
        if info.task in (BINARY, MULTICLASS):
            counts = np.bincount(a["y"][prepared.train].astype(np.int64), minlength=max(2, info.n_classes))
            weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
            self.class_weight = torch.as_tensor(weights, dtype=torch.float32, device=device)

    def batches(self, rows: "torch.Tensor", batch_size: int, generator: "torch.Generator",
                model: Any = None) -> Iterator[tuple]:
        import torch

        perm = rows[torch.randperm(len(rows), generator=generator, device=rows.device)]
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            if len(idx) < 2:  # batch norm cannot train on one row
                continue
            yield self.x_num[idx], self.x_cat[idx], self.y[idx]

    def loss(self, net: "torch.nn.Module", batch: tuple, hp: dict[str, Any]) -> "torch.Tensor":
        return tabular_loss(net(batch[0], batch[1]), batch[2], hp, self.task, self.class_weight) \
            + network_penalty(net)

    def predict(self, model: Any, rows: "torch.Tensor", batch_size: int) -> "np.ndarray":
        import torch

        outs = predict_in_batches(model, rows, batch_size, lambda m, idx: m(self.x_num[idx], self.x_cat[idx]))
        logits = torch.cat(outs) if outs else torch.empty(0, 1)
        scores = outputs_to_scores(logits, self.task).cpu().numpy()
        return scores * self.y_std + self.y_mean if self.task == REGRESSION else scores

    def targets(self, rows: "np.ndarray") -> "np.ndarray":
        y = self.prepared.arrays["y_raw"][rows]
        return y if self.task == REGRESSION else y.astype(int)


def _fingerprint(columns: Any, target: str, task: str, split: Any, y: "np.ndarray") -> str:
    h = hashlib.sha256()
    h.update(json.dumps([list(map(str, columns)), target, task]).encode())
    for part in (split.train, split.val, split.test, y):
        h.update(part.tobytes())
    return h.hexdigest()[:16]
