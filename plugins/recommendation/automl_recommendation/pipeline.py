"""The recommendation data path: interaction logs in, top-K rankings (or ratings) out.

Rows are interactions sorted by (user, time, item) (`automl_recommendation.data`); `train`, `val` and `test`
index them. Implicit task: `val`/`test` hold each evaluated user's second-to-last/last interaction, so one
row is one evaluated user, its target is the held-out item, and `predict` scores every item for that user,
with every item the user met before that row masked. Explicit task: rows are ratings to predict.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterator

from automl.errors import ConfigError
from automl.pipeline import Pipeline, Prepared

from automl_recommendation.data import encode, fingerprint, leave_last_out, read_source, resolve_columns, resolve_task
from automl_recommendation.options import EXPLICIT, IMPLICIT, RecInfo, RecommendationOptions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import pandas as pd
    import torch

    from automl.config import RunConfig
    from automl.plugins import PluginHost
    from automl.specs import DomainSpec

log = logging.getLogger(__name__)

#: Batch sizes count training interactions (pairs, or next-item targets inside SASRec windows).
BATCH_SIZES = (512, 1024)


class RecommendationPipeline(Pipeline):
    name = "recommendation"

    def __init__(self, options: RecommendationOptions | None = None) -> None:
        self.options = options or RecommendationOptions()

    # -- host process ------------------------------------------------------------------------------------

    def prepare(self, cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec",
                frame: "pd.DataFrame | None") -> Prepared:
        import numpy as np

        from automl.data.split import split_rows

        opts = self.options
        if opts.k < 1 or opts.max_seq_len < 2 or opts.min_interactions < 1:
            raise ConfigError("domain.options: k and min_interactions must be at least 1, max_seq_len at least 2")
        task = resolve_task(cfg.domain.task)
        raw, name, known = read_source(cfg, host, domain, frame)
        data = encode(raw, name, resolve_columns(known, opts), task)
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
        state = {"user_ids": data.user_ids, "item_ids": data.item_ids, "columns": data.columns, "dataset": name}
        return Prepared(info=info, arrays=arrays, train=train, val=val, test=test, state=state,
                        fingerprint=fingerprint(task, data, train, val, test))

    # -- where trials run --------------------------------------------------------------------------------

    def training_space(self, trial: "optuna.Trial", info: RecInfo) -> dict[str, Any]:
        return {
            "lr": trial.suggest_float("lr", 2e-3, 8e-3, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True),
            "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        }

    def to_device(self, prepared: Prepared, device: "torch.device") -> dict[str, "torch.Tensor"]:
        """Interactions move to `device` once; this pipeline binds to the prepared data's shape."""
        import torch

        a, info = prepared.arrays, prepared.info
        self.task, self.n_items = info.task, info.n_items
        self.rating_range = (info.rating_min, info.rating_max)
        data = {k: torch.as_tensor(a[k], device=device) for k in ("user", "item", "offsets")}
        if "rating" in a:
            data["rating"] = torch.as_tensor(a["rating"], dtype=torch.float32, device=device)
        return data

    def train_batches(self, data: dict[str, "torch.Tensor"], rows: "torch.Tensor", batch_size: int,
                      generator: "torch.Generator", model: Any) -> Iterator[tuple]:
        import torch

        from automl_recommendation import sampling

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

    def loss(self, net: "torch.nn.Module", batch: tuple, params: dict[str, Any]) -> "torch.Tensor":
        return net.loss(batch)

    def predict(self, model: Any, data: dict[str, "torch.Tensor"], rows: "torch.Tensor",
                batch_size: int) -> "np.ndarray":
        """Implicit: a score for every item per row (seen items masked). Explicit: the rating of each row."""
        import torch

        from automl_recommendation.metrics import MASKED
        from automl_recommendation.sampling import history_tokens, seen_before

        was_training = model.training
        model.eval()
        outs = []
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                idx = rows[start:start + batch_size]
                users = data["user"][idx]
                if self.task == EXPLICIT:
                    outs.append(model.pair_scores(users, data["item"][idx]).float().clamp(*self.rating_range))
                    continue
                first = data["offsets"][users]
                tokens = history_tokens(data["item"], first, idx, model.history_length) \
                    if model.history_length else None
                scores = model.full_scores(users, tokens).float()
                which, seen = seen_before(data["item"], first, idx)
                scores[which, seen] = MASKED
                outs.append(scores)
        model.train(was_training)
        empty = torch.empty(0) if self.task == EXPLICIT else torch.empty(0, self.n_items)
        return (torch.cat(outs) if outs else empty).cpu().numpy()

    def targets(self, prepared: Prepared, rows: "np.ndarray") -> "np.ndarray":
        if prepared.info.task == EXPLICIT:
            return prepared.arrays["rating"][rows].astype("float64")
        return prepared.arrays["item"][rows]

    # -- artifacts ---------------------------------------------------------------------------------------

    def save_predictor(self, directory: str, prepared: Prepared, family: str, params: dict[str, Any],
                       state_dict: dict[str, "torch.Tensor"], extra: dict[str, Any]) -> None:
        from automl_recommendation.predictor import save_predictor

        save_predictor(directory, prepared, family, params, state_dict, extra)

    def load_predictor(self, directory: str, meta: dict[str, Any], host: "PluginHost") -> Any:
        from automl_recommendation.predictor import Recommender

        return Recommender.load(directory, meta, host)
