"""The host's tabular pipeline: binary, multiclass and regression on one table.

`TabularPipeline.prepare` checks the host's table, splits it (seeded, stratified, grouped where asked),
fits the preprocessing on the training rows and returns numpy arrays; `TabularData` (what `bind` returns)
holds them as tensors on the training device; `automl.tabular.predictor.TabularFormat` saves and loads the
final model.

Text columns (`data.text_columns`, or detected) skip the preprocessor: a pre-trained encoder reads them once
here (`automl.text.cache.prepare_text`: tokens, pooled embeddings, token states for fine-tuning), the info
becomes a `TextInfo` and the `text_fusion` family joins the search; other families see the tabular features
only. Without an encoder (no `text` extra, no `text.encoder`) detected text is left out, as it used to be.
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

def batch_size_for(n_train: int) -> int:
    """The batch size for this many training rows: about n / 32, a power of two in [32, 256], and large enough
    for at most ~256 steps an epoch on large data. Not searched (as in the TabM paper): trials that share it can
    share a stacked model, and it is not where the quality is."""
    import math

    size = 2 ** round(math.log2(max(n_train, 1) / 32))
    size = max(32, min(size, 256))
    while n_train / size > 256 and size < 8192:
        size *= 2
    return size



class TabularPipeline(Pipeline):
    """Tables with a target column. `search_class_weight` adds class weighting as a searched option."""

    name = "tabular"
    refits = True

    def __init__(self, search_class_weight: bool = False) -> None:
        self.search_class_weight = search_class_weight

    # -- preparation (host process) ----------------------------------------------------------------------

    def prepare(self, table: "Table", cfg: "RunConfig") -> Prepared:
        import numpy as np

        from automl.data.checks import check_fit_size, check_table, warn_small_test
        from automl.data.split import cv_folds, split_rows
        from automl.tabular.preprocessing import TabularPreprocessor

        checked = check_table(table, cfg.data.text_columns)
        check_fit_size(checked, table.target, f"table {table.name!r}")
        encoder = _text_encoder(checked, cfg)
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
        warn_small_test(len(split.test), cfg.data.test_size)

        pre = TabularPreprocessor(checked.numeric, checked.categorical, checked.dates).fit(
            checked.features.iloc[split.train])
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
            n_outputs=n_classes if task == MULTICLASS else 1, n_classes=n_classes, n_indicators=pre.n_indicators,
        )
        arrays = {"x_num": x_num, "x_cat": x_cat, "y": y_train_space, "y_raw": y.astype(np.float64)}
        if checked.text:
            info = _with_text(info, checked, cfg, encoder, arrays, state)
        folds = None
        n_dev = len(split.train) + len(split.val)
        if n_dev + len(split.test) < cfg.search.cv.below_rows:
            folds = cv_folds(y, split.development, cfg.search.cv.folds, cfg.search.cv.repeats, cfg.seed,
                             stratify=classification, groups=groups)
            log.info("%d rows (< search.cv.below_rows=%d): each trial is scored by %d x %d-fold cross-validation "
                     "on the %d development rows", n_dev + len(split.test), cfg.search.cv.below_rows,
                     cfg.search.cv.repeats, cfg.search.cv.folds, n_dev)
        log.info("%s: %d rows (train %d, validation %d, test %d), %d numeric, %d categorical, %d date and %d text "
                 "features, task %s", table.name, len(y), len(split.train), len(split.val), len(split.test),
                 len(checked.numeric), len(checked.categorical), len(checked.dates), len(checked.text), task)
        fingerprint = _fingerprint(checked.features.columns, table.target, task, split, y)
        validation = (f"{cfg.search.cv.repeats} x {cfg.search.cv.folds}-fold cross-validation on the {n_dev} "
                      "development rows (train + validation)" if folds else
                      f"one validation split of {len(split.val)} rows")
        summary = DataSummary(
            source=table.name, rows=len(y), task=task, target=table.target,
            features={"numeric": list(checked.numeric), "categorical": list(checked.categorical),
                      **({"date": list(checked.dates)} if checked.dates else {}),
                      **({"text": list(checked.text)} if checked.text else {})},
            classes={str(c): int(n) for c, n in checked.target.value_counts().items()} if classification else None,
            positive_class=checked.positive_class, dropped=dict(checked.dropped), dropped_rows=checked.dropped_rows,
            sensitive=list(table.sensitive), validation=validation,
            split={"train": len(split.train), "validation": len(split.val), "test": len(split.test)},
        )
        return Prepared(
            info=info,
            arrays=arrays,
            train=split.train, val=split.val, test=split.test, folds=folds, state=state,
            side={k: v.to_numpy() for k, v in checked.side.items()}, fingerprint=fingerprint, summary=summary,
        )

    def stopping_metric(self, info: TabularInfo) -> Optional[str]:
        """Log loss for classification: a proper scoring rule keeps improving while ROC AUC plateaus."""
        return "log_loss" if info.task in (BINARY, MULTICLASS) else None

    def training_space(self, trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
        """AdamW's learning rate and (decoupled) weight decay, searched in the TabM paper's ranges widened to the
        plain MLP's; the batch size follows from the data (`batch_size_for`)."""
        hp = {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
            "batch_size": batch_size_for(info.n_train),
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
        self.text = None
        if "text" in prepared.state:  # the text arrays, on the device once (automl.text.cache)
            from automl.text.cache import DeviceText

            self.text = DeviceText(prepared, device)
        self.class_weight = None
        if info.task in (BINARY, MULTICLASS):
            counts = np.bincount(a["y"][prepared.train].astype(np.int64), minlength=max(2, info.n_classes))
            weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
            self.class_weight = torch.as_tensor(weights, dtype=torch.float32, device=device)

    def batches(self, rows: "torch.Tensor", batch_size: int, generator: "torch.Generator",
                model: Any = None) -> Iterator[tuple]:
        import torch

        perm = rows[torch.randperm(len(rows), generator=generator, device=rows.device)]
        text = self.text is not None and getattr(model, "uses_text", False)
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            if len(idx) < 2:  # batch norm cannot train on one row
                continue
            if text:  # a fourth item only for models that read text: other families' batches are unchanged
                from automl.text.cache import RowsText

                yield self.x_num[idx], self.x_cat[idx], self.y[idx], RowsText(self.text, idx)
            else:
                yield self.x_num[idx], self.x_cat[idx], self.y[idx]

    def loss(self, net: "torch.nn.Module", batch: tuple, hp: dict[str, Any]) -> "torch.Tensor":
        ensemble = getattr(net, "ensemble_logits", None)
        if callable(ensemble):  # TabM and its kin train on the mean of their submodels' losses
            balanced = [hp.get("class_weight") == "balanced"]
            logits = ensemble(batch[0], batch[1]).unsqueeze(0)
            return stacked_row_losses(logits, batch[2].unsqueeze(0), self.task,
                                      self.class_weight if balanced[0] else None, balanced).mean()
        logits = net(batch[0], batch[1], batch[3]) if len(batch) > 3 else net(batch[0], batch[1])
        return tabular_loss(logits, batch[2], hp, self.task, self.class_weight) + network_penalty(net)

    def fit_inputs(self, model: Any, rows: "torch.Tensor", member: int = 0) -> None:
        fit = getattr(model, "fit_inputs", None)
        if callable(fit):
            fit(self.x_num[rows], member)

    def predict(self, model: Any, rows: "torch.Tensor", batch_size: int) -> "np.ndarray":
        import torch

        if self.text is not None and getattr(model, "uses_text", False):
            from automl.text.cache import TEXT_EVAL_ROWS, RowsText

            outs = predict_in_batches(model, rows, min(batch_size, TEXT_EVAL_ROWS), lambda m, idx: m(
                self.x_num[idx], self.x_cat[idx], RowsText(self.text, idx)))
        else:
            outs = predict_in_batches(model, rows, batch_size, lambda m, idx: m(self.x_num[idx], self.x_cat[idx]))
        logits = torch.cat(outs) if outs else torch.empty(0, 1)
        scores = outputs_to_scores(logits, self.task).cpu().numpy()
        return scores * self.y_std + self.y_mean if self.task == REGRESSION else scores

    def targets(self, rows: "np.ndarray") -> "np.ndarray":
        y = self.prepared.arrays["y_raw"][rows]
        return y if self.task == REGRESSION else y.astype(int)

    # -- K stacked networks at once (automl.training.vectorised) -------------------------------------------

    def stacked_batch(self, index: "torch.Tensor") -> tuple:
        """The rows of a (K, rows) index: x_num (K, rows, features), x_cat (K, rows, columns), y (K, rows)."""
        return self.x_num[index], self.x_cat[index], self.y[index]

    def stacked_losses(self, model: Any, batch: tuple, hps: list[dict[str, Any]]) -> "torch.Tensor":
        """Per-row losses (K, rows) of every member: the mean over a member's submodels (TabM trains on the mean
        of its k losses), class-weighted for members whose `class_weight` is "balanced"."""
        x_num, x_cat, y = batch
        logits = model.ensemble_logits(x_num, x_cat)  # (K, e, rows, outputs)
        balanced = [hp.get("class_weight") == "balanced" for hp in hps]
        return stacked_row_losses(logits, y, self.task, self.class_weight if any(balanced) else None, balanced)

    def stacked_predict(self, model: Any, rows: list["torch.Tensor"], batch_size: int) -> list["np.ndarray"]:
        """Each member's scores on its own rows (the same tensor for every member, or one each), `batch_size` rows
        at a time across the stack (batch_size / K per member), so that a stack's evaluation holds no more
        activations at once than a single network's, whatever its K."""
        import torch

        k = len(rows)
        if all(r is rows[0] for r in rows):
            index = rows[0].unsqueeze(0).expand(k, -1)
        else:
            longest = max(len(r) for r in rows)
            index = torch.stack([torch.cat([r, r[:1].expand(longest - len(r))]) if len(r) < longest else r
                                 for r in rows])
        outs = predict_in_batches(model, index.T, max(1, batch_size // k),
                                  lambda m, idx: m(self.x_num[idx.T], self.x_cat[idx.T]))
        logits = torch.cat(outs, dim=1) if outs else torch.empty(k, 0, 1)
        scores = outputs_to_scores(logits, self.task).cpu().numpy()
        if self.task == REGRESSION:
            scores = scores * self.y_std + self.y_mean
        return [scores[m, : len(r)] for m, r in enumerate(rows)]


def stacked_row_losses(logits: "torch.Tensor", y: "torch.Tensor", task: str, class_weight: "torch.Tensor | None",
                       balanced: list[bool]) -> "torch.Tensor":
    """Training loss per member and row, (K, rows), from submodel logits (K, e, rows, outputs); `balanced[m]`
    weights member m's classes by `class_weight` (the positive class by their ratio in the binary case)."""
    import torch
    import torch.nn.functional as F

    k = logits.shape[0]
    if task == BINARY:
        target = y.unsqueeze(1).expand(-1, logits.shape[1], -1)
        pos_weight = None
        if class_weight is not None:
            ratio = class_weight[1] / class_weight[0]
            pos_weight = torch.where(torch.as_tensor(balanced, device=logits.device), ratio,
                                     torch.ones((), device=logits.device)).view(k, 1, 1)
        losses = F.binary_cross_entropy_with_logits(logits.squeeze(-1), target, pos_weight=pos_weight,
                                                    reduction="none")
    elif task == MULTICLASS:
        log_p = logits.log_softmax(-1)
        target = y.view(k, 1, -1, 1).expand(-1, logits.shape[1], -1, 1)
        losses = -log_p.gather(-1, target).squeeze(-1)
        if class_weight is not None:
            weights = torch.where(torch.as_tensor(balanced, device=y.device).view(k, 1), class_weight[y],
                                  torch.ones((), device=y.device))
            losses = losses * weights.unsqueeze(1)
    else:
        losses = (logits.squeeze(-1) - y.unsqueeze(1)) ** 2
    return losses.mean(1)


def _text_encoder(checked: Any, cfg: "RunConfig") -> Any:
    """The encoder folder for the table's text columns, or None when it has none. Without an encoder, detected
    text is left out (listed with the reason); text the user asked for is an error that says what to install."""
    if not checked.text:
        return None
    from automl.text.encoder import missing_encoder_hint, resolve_encoder

    path = resolve_encoder(cfg.text.encoder)
    if path is not None:
        return path
    asked = [c for c in checked.text if c in cfg.data.text_columns]
    if asked:
        from automl.errors import ConfigError

        raise ConfigError(f"data.text_columns={asked} needs a text encoder, and none is installed: "
                          f"{missing_encoder_hint()}")
    for col in checked.text:
        checked.dropped[col] = f"free text, and no text encoder to read it ({missing_encoder_hint()})"
        log.warning("dropping column %s: %s", col, checked.dropped[col])
    checked.features = checked.features.drop(columns=checked.text)
    checked.text = []
    if checked.features.shape[1] == 0:
        from automl.errors import DataError

        raise DataError(f"no feature columns left once free text is left out: {missing_encoder_hint()}")
    return None


def _with_text(info: TabularInfo, checked: Any, cfg: "RunConfig", encoder: Any, arrays: dict[str, Any],
               state: dict[str, Any]) -> TabularInfo:
    """The text columns encoded once (`automl.text.cache.prepare_text`); their arrays join `arrays`, what the
    predictor needs joins `state`, and the info becomes a `TextInfo`."""
    import dataclasses

    from automl.text.cache import prepare_text
    from automl.text.family import TextInfo

    text = prepare_text(checked.features[checked.text], cfg, encoder)
    arrays.update(text.arrays)
    state["text"] = text.state
    return TextInfo(**{f.name: getattr(info, f.name) for f in dataclasses.fields(info)},
                    text_columns=tuple(text.columns), text_encoder=str(text.encoder.path),
                    text_name=text.encoder.name, text_dim=text.encoder.dim, text_layers=text.encoder.n_layers,
                    text_lengths=text.lengths, text_adapt=text.adapt, text_pooling=text.pooling)


def _fingerprint(columns: Any, target: str, task: str, split: Any, y: "np.ndarray") -> str:
    h = hashlib.sha256()
    h.update(json.dumps([list(map(str, columns)), target, task]).encode())
    for part in (split.train, split.val, split.test, y):
        h.update(part.tobytes())
    return h.hexdigest()[:16]
