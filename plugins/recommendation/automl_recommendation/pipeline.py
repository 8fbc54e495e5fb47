"""The recommendation data path: interaction logs in, top-K rankings (or ratings) out.

Rows are interactions sorted by (user, time, item) (`automl_recommendation.data`); `train`, `val` and `test`
index them. Implicit task: `val`/`test` hold each evaluated user's second-to-last/last interaction, so one
row is one evaluated user, its target is the held-out item, and `InteractionData.predict` scores every item
for that user, with every item the user met before that row masked. Explicit task: rows are ratings to
predict. The saved model is `automl_recommendation.predictor.RecommenderFormat`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterator, Optional

from automl.api import ConfigError, DataSummary, DeviceData, Pipeline, Prepared, predict_in_batches

from automl_recommendation.data import encode, fingerprint, leave_last_out, resolve_columns, resolve_task, \
    source_columns
from automl_recommendation.options import EXPLICIT, IMPLICIT, RecInfo, RecommendationOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import torch

    from automl.api import PredictorFormat, RunConfig, Table

log = logging.getLogger(__name__)

#: Batch sizes count training interactions (pairs, or next-item targets inside SASRec windows).
BATCH_SIZES = (512, 1024)


class RecommendationPipeline(Pipeline):
    name = "recommendation"

    def __init__(self, options: RecommendationOptions | None = None) -> None:
        self.options = options or RecommendationOptions()

    # -- host process ------------------------------------------------------------------------------------

    def prepare(self, table: "Table", cfg: "RunConfig") -> Prepared:
        import numpy as np

        from automl.api import split_rows

        opts = self.options
        if opts.k < 1 or opts.max_seq_len < 2 or opts.min_interactions < 1:
            raise ConfigError("domain.options: k and min_interactions must be at least 1, max_seq_len at least 2")
        task = resolve_task(cfg.domain.task)
        name = table.name
        data = encode(table.frame, name, resolve_columns(source_columns(table, cfg), opts), task)
        if task == IMPLICIT:
            train, val, test = leave_last_out(data, opts.min_interactions)
            longest = int(np.bincount(data.user[train], minlength=data.n_users).max())
            info = RecInfo(task=task, n_train=len(train), n_users=data.n_users, n_items=data.n_items,
                           max_seq_len=max(2, min(opts.max_seq_len, longest)))
            log.info("%s: %d interactions, %d users, %d items; leave-last-out: %d train, %d users evaluated",
                     name, len(data.user), data.n_users, data.n_items, len(train), len(test))
        else:
            split = split_rows(data.rating, cfg.data.test_size, cfg.data.val_size, cfg.seed, stratify=False)
            train, val, test = np.sort(split.train), np.sort(split.val), np.sort(split.test)
            r = data.rating[train]
            info = RecInfo(task=task, n_train=len(train), n_users=data.n_users, n_items=data.n_items,
                           max_seq_len=opts.max_seq_len, rating_mean=float(r.mean()), rating_min=float(r.min()),
                           rating_max=float(r.max()))
            log.info("%s: %d ratings, %d users, %d items; random split: %d train, %d validation, %d test",
                     name, len(data.user), data.n_users, data.n_items, len(train), len(val), len(test))
        arrays = {"user": data.user, "item": data.item, "offsets": data.offsets}
        if data.rating is not None:
            arrays["rating"] = data.rating
        if opts.item_text:  # the content tower's input: one frozen text embedding per item
            import dataclasses

            embedded = item_text_embeddings(table.frame, data, opts.item_text, cfg)
            if embedded is not None:  # None: no encoder installed, the tower is off (logged)
                arrays["item_text"] = embedded
                info = dataclasses.replace(info, text_dim=int(embedded.shape[1]))
        state = {"user_ids": data.user_ids, "item_ids": data.item_ids, "columns": data.columns, "dataset": name}
        cols = data.columns
        summary = DataSummary(
            source=name, rows=len(data.user), task=task, target=cols.rating if task == EXPLICIT else cols.item,
            features={"user": [cols.user], "item": [cols.item], "time": [cols.time]},
            dropped={c: "not an interaction column" for c in table.frame.columns
                     if c not in {cols.user, cols.item, cols.time, cols.rating}},
            split={"train": len(train), "validation": len(val), "test": len(test)},
            validation=("leave-last-out: each evaluated user's second-to-last interaction" if task == IMPLICIT
                        else "a random validation split of the ratings"),
            extra={"users": data.n_users, "items": data.n_items,
                   **({"item_text": list(opts.item_text)} if opts.item_text else {})},
        )
        return Prepared(info=info, arrays=arrays, train=train, val=val, test=test, state=state,
                        fingerprint=fingerprint(task, data, train, val, test), summary=summary)

    # -- where trials run --------------------------------------------------------------------------------

    def training_space(self, trial: "optuna.Trial", info: RecInfo) -> dict[str, Any]:
        return {
            "lr": trial.suggest_float("lr", 2e-3, 8e-3, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True),
            "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        }

    def bind(self, prepared: Prepared, device: "torch.device") -> "InteractionData":
        return InteractionData(prepared, device)

    def predictor_format(self) -> "PredictorFormat":
        from automl_recommendation.predictor import RecommenderFormat

        return RecommenderFormat()


def item_text_embeddings(frame: Any, data: Any, columns: list[str], cfg: "RunConfig") -> "Optional[np.ndarray]":
    """One text per item (its `columns` joined, e.g. "Toy Story (1995) | Adventure|Animation|Children"), embedded
    by the host's pre-trained text encoder (frozen, mean pooling), in the items' index order; None (and one log
    line) when no encoder is installed."""
    from automl.api import embed_texts

    item = data.columns.item
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, frame.columns[:30]))
        raise ConfigError(f"domain.options.item_text names {missing[0]!r}, which is not a column of {data.name!r} "
                          f"(columns: {shown})")
    first = frame.drop_duplicates(item).set_index(item)[list(columns)]
    texts = [" | ".join(str(v) for v in first.loc[i].tolist() if v == v and v is not None) if i in first.index
             else "" for i in data.item_ids]
    embedded = embed_texts(texts, cfg, purpose="the content tower (domain.options.item_text)", optional=True)
    if embedded is not None:
        log.info("content tower: item text from %s for %d items, searched as content none / add / dropout",
                 ", ".join(columns), len(texts))
    return embedded


class InteractionData(DeviceData):
    """Interactions on the training device (user, item, offsets, ratings as tensors), moved once."""

    def __init__(self, prepared: Prepared, device: "torch.device") -> None:
        import torch

        super().__init__(prepared, device)
        a, info = prepared.arrays, prepared.info
        self.task, self.n_items = info.task, info.n_items
        self.rating_range = (info.rating_min, info.rating_max)
        self.tensors = {k: torch.as_tensor(a[k], device=device) for k in ("user", "item", "offsets")}
        if "rating" in a:
            self.tensors["rating"] = torch.as_tensor(a["rating"], dtype=torch.float32, device=device)

    def batches(self, rows: "torch.Tensor", batch_size: int, generator: "torch.Generator",
                model: Any) -> Iterator[tuple]:
        import torch

        from automl_recommendation import sampling

        data = self.tensors
        if self.task == EXPLICIT:
            return sampling.rating_batches(data["user"], data["item"], data["rating"], rows, batch_size, generator)
        if model.trains_on_windows:
            # Windows tile each user's training rows, which start the user's block (leave-last-out); they hold
            # up to `length` targets each, so a batch of batch_size // length windows keeps ~batch_size targets.
            length = model.history_length
            train_len = torch.bincount(data["user"][rows], minlength=len(data["offsets"]) - 1)
            return sampling.window_batches(data["item"], data["offsets"], train_len, length,
                                           max(1, batch_size // length), self.n_items, model.negatives, generator)
        return sampling.pair_batches(data["user"], data["item"], data["offsets"], rows, batch_size, self.n_items,
                                     model.negatives, model.history_length, generator)

    def loss(self, net: "torch.nn.Module", batch: tuple, hp: dict[str, Any]) -> "torch.Tensor":
        return net.loss(batch)

    def fit_inputs(self, model: Any, rows: "torch.Tensor", member: int = 0) -> None:
        """A content tower's item text embeddings, copied into the model before it trains."""
        content = getattr(model, "content", None)
        if content is not None and "item_text" in self.prepared.arrays:
            import torch

            with torch.no_grad():
                content.item_text.copy_(torch.as_tensor(self.prepared.arrays["item_text"]))

    def predict(self, model: Any, rows: "torch.Tensor", batch_size: int) -> "np.ndarray":
        """Implicit: a score for every item per row (seen items masked). Explicit: the rating of each row."""
        import torch

        outs = predict_in_batches(model, rows, batch_size, self._score)
        empty = torch.empty(0) if self.task == EXPLICIT else torch.empty(0, self.n_items)
        return (torch.cat(outs) if outs else empty).cpu().numpy()

    def _score(self, model: Any, idx: "torch.Tensor") -> "torch.Tensor":
        from automl_recommendation.metrics import MASKED
        from automl_recommendation.sampling import history_tokens, seen_before

        data = self.tensors
        users = data["user"][idx]
        if self.task == EXPLICIT:
            return model.pair_scores(users, data["item"][idx]).float().clamp(*self.rating_range)
        first = data["offsets"][users]
        tokens = history_tokens(data["item"], first, idx, model.history_length) if model.history_length else None
        scores = model.full_scores(users, tokens).float()
        which, seen = seen_before(data["item"], first, idx)
        scores[which, seen] = MASKED
        return scores

    def targets(self, rows: "np.ndarray") -> "np.ndarray":
        if self.task == EXPLICIT:
            return self.prepared.arrays["rating"][rows].astype("float64")
        return self.prepared.arrays["item"][rows]
