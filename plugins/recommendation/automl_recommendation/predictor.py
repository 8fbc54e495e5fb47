"""The saved recommender: JSON, safetensors and (SASRec) a `transformers` folder. No pickled code.

```
predictor/
  predictor.json        the host's PredictorMeta: family, parameters, data shape, domain; `data` holds the
                        column names and the dataset
  ids.json              the original user and item ids, in index order
  history.safetensors   every user's interactions in time order (what "already seen" means) and item counts
  model.safetensors     weights of MF-BPR / NeuMF
  transformer/          SASRec: the BertModel, written by save_pretrained, read back by from_pretrained
```
`automl.load(run_dir).recommend(user_ids, k=10)` ranks every item a known user has not interacted with;
a user the model never saw gets the most popular items instead, and the output says so row by row.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from automl.api import DataError, PredictorFormat, PredictorMeta

from automl_recommendation.options import EXPLICIT, RecInfo

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

    from automl.api import FamilyLookup, Prepared

log = logging.getLogger(__name__)

META, IDS, HISTORY, WEIGHTS, TRANSFORMER = ("predictor.json", "ids.json", "history.safetensors", "model.safetensors",
                                            "transformer")
SEQUENTIAL = "sasrec"
MODEL, POPULARITY = "model", "popularity (unknown user)"


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No per-file progress bars from `transformers` while a predictor saves or loads."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _plain(values: Iterable[Any]) -> list[Any]:
    """numpy scalars to Python, so ids survive JSON."""
    return [v.item() if hasattr(v, "item") else v for v in values]


class RecommenderFormat(PredictorFormat):
    """Saves the recommender as JSON and safetensors (SASRec: a `transformers` folder); rebuilds it by name."""

    declines_averaging = ("a recommender's scores are on each model's own scale (BPR margins, sampled-softmax "
                          "logits), so scores of several models do not average: the final model is the best trial")

    def save(self, directory: Path, prepared: "Prepared", meta: PredictorMeta,
             state_dict: dict[str, "torch.Tensor"]) -> None:
        import numpy as np
        import torch
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        st, a = prepared.state, prepared.arrays
        meta.data = {"columns": asdict(st["columns"]), "dataset": st["dataset"]}
        (directory / META).write_text(json.dumps(meta.to_json(), indent=2, default=str))
        (directory / IDS).write_text(json.dumps({"users": _plain(st["user_ids"]), "items": _plain(st["item_ids"])}))
        popularity = np.bincount(a["item"], minlength=prepared.info.n_items).astype(np.float32)
        save_file({"offsets": torch.as_tensor(a["offsets"]), "item": torch.as_tensor(a["item"]),
                   "popularity": torch.as_tensor(popularity)}, str(directory / HISTORY))
        weights = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        member = meta.lead
        if member.family == SEQUENTIAL:
            from automl_recommendation.networks import SASRec

            net = SASRec.from_params(member.params, prepared.info.n_items)
            net.load_state_dict(weights)
            with _quiet_transformers():
                net.bert.save_pretrained(str(directory / TRANSFORMER))  # config.json + model.safetensors
        else:
            save_file(weights, str(directory / WEIGHTS))

    def load(self, directory: Path, meta: PredictorMeta, families: "FamilyLookup") -> "Recommender":
        from safetensors.torch import load_file

        info = RecInfo(**meta.info)
        member = meta.lead
        if member.family == SEQUENTIAL:
            from transformers import BertModel

            from automl_recommendation.networks import SASRec

            with _quiet_transformers():  # local folder only: nothing is downloaded, no code is named by config
                bert = BertModel.from_pretrained(str(directory / TRANSFORMER), local_files_only=True,
                                                 add_pooling_layer=False)
            model = SASRec(bert, int(member.params["negatives"]))
        else:
            model = families(member.family).create(member.params, info)
            model.load_state_dict(load_file(str(directory / WEIGHTS)))
        ids = json.loads((directory / IDS).read_text())
        return Recommender(meta, model, ids["users"], ids["items"], load_file(str(directory / HISTORY)))

class Recommender:
    """A trained recommender and the interaction history it ranks against."""

    def __init__(self, meta: PredictorMeta, model: "torch.nn.Module", user_ids: list[Any], item_ids: list[Any],
                 history: dict[str, "torch.Tensor"]) -> None:
        self.meta = meta
        self.model = model.eval()
        self.task: str = meta.task
        self.info = RecInfo(**meta.info)
        self.user_ids, self.item_ids = user_ids, item_ids
        self._user_index = {u: i for i, u in enumerate(user_ids)}
        self.offsets, self.items, self.popularity = history["offsets"], history["item"], history["popularity"]

    def __repr__(self) -> str:
        return (f"Recommender(family={self.meta.lead.family!r}, task={self.task!r}, users={len(self.user_ids)}, "
                f"items={len(self.item_ids)})")

    # -- recommendations ---------------------------------------------------------------------------------

    def _index(self, user: Any) -> int | None:
        key = user.item() if hasattr(user, "item") else user
        found = self._user_index.get(key)
        if found is None and isinstance(key, (str, int)) and not isinstance(key, bool):
            # ids typed the other way ("42" for 42, or 42 for "42") still find their user
            other = str(key) if isinstance(key, int) else (int(key) if key.lstrip("-").isdigit() else None)
            found = self._user_index.get(other) if other is not None else None
        return found

    def known(self, user: Any) -> bool:
        return self._index(user) is not None

    def seen(self, user: Any) -> list[Any]:
        """The items a known user has interacted with, oldest first (what `recommend` leaves out)."""
        u = self._index(user)
        if u is None:
            raise DataError(f"user {user!r} is not in the training data: it has no history")
        return [self.item_ids[i] for i in self.items[self.offsets[u]:self.offsets[u + 1]].tolist()]

    def _scores(self, users: "torch.Tensor", exclude_seen: bool) -> "torch.Tensor":
        import torch

        from automl_recommendation.metrics import MASKED
        from automl_recommendation.sampling import history_tokens, seen_before

        first, end = self.offsets[users], self.offsets[users + 1]
        length = self.model.history_length
        with torch.inference_mode():
            tokens = history_tokens(self.items, first, end, length) if length else None
            scores = self.model.full_scores(users, tokens).float()
            if self.task == EXPLICIT:
                scores = scores.clamp(self.info.rating_min, self.info.rating_max)
            if exclude_seen:
                which, seen = seen_before(self.items, first, end)
                scores[which, seen] = MASKED
        return scores

    def recommend(self, user_ids: Any, k: int = 10, exclude_seen: bool = True) -> "pd.DataFrame":
        """Top-k items per user: one row per (user, rank) with columns user, rank, item, score, source.

        Known users get the model's ranking of every item they have not interacted with (`score` is the
        model's score, or the predicted rating for an explicit model). Users the model never saw get the
        most popular items (`score` is the item's interaction count) and `source` says
        "popularity (unknown user)"; they are also listed in `result.attrs["unknown_users"]`.
        """
        import pandas as pd
        import torch

        from automl_recommendation.metrics import MASKED

        if k < 1:
            raise DataError(f"k={k} must be at least 1")
        users = [user_ids] if isinstance(user_ids, (str, int)) or not hasattr(user_ids, "__iter__") else list(user_ids)
        index = [self._index(u) for u in users]
        known = [i for i in index if i is not None]
        ranked: dict[int, tuple[list[int], list[float]]] = {}
        if known:
            codes = torch.as_tensor(sorted(set(known)), dtype=torch.long)
            scores = self._scores(codes, exclude_seen)
            top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
            for row, code in enumerate(codes.tolist()):
                keep = top.values[row] > MASKED  # fewer unseen items than k: stop at the last one
                ranked[code] = (top.indices[row][keep].tolist(), top.values[row][keep].tolist())
        popular = torch.topk(self.popularity, min(k, len(self.popularity)))
        unknown = [u for u, i in zip(users, index) if i is None]
        if unknown:
            log.warning("%d user(s) unknown to the model get the most popular items: %s", len(unknown),
                        ", ".join(map(str, unknown[:10])))
        rows = []
        for user, i in zip(users, index):
            items, scores_, source = (*ranked[i], MODEL) if i is not None else \
                (popular.indices.tolist(), popular.values.tolist(), POPULARITY)
            rows += [{"user": user, "rank": r + 1, "item": self.item_ids[it], "score": float(s), "source": source}
                     for r, (it, s) in enumerate(zip(items, scores_))]
        frame = pd.DataFrame(rows, columns=["user", "rank", "item", "score", "source"])
        frame.attrs["unknown_users"] = unknown
        return frame

    def predict(self, rows: "pd.DataFrame") -> "pd.Series":
        """The model's score (implicit) or predicted rating (explicit) for each (user, item) row.

        Columns are named as in training (`meta.data["columns"]`). Unknown users or items get NaN (implicit) or
        the mean training rating (explicit).
        """
        import numpy as np
        import pandas as pd
        import torch

        cols = self.meta.data["columns"]
        missing = [c for c in (cols["user"], cols["item"]) if c not in rows.columns]
        if missing:
            raise DataError(f"predict needs the columns {cols['user']!r} and {cols['item']!r}; missing {missing}")
        item_index = {it: i for i, it in enumerate(self.item_ids)}
        u = np.array([-1 if self._index(x) is None else self._index(x) for x in rows[cols["user"]]])
        i = np.array([item_index.get(x.item() if hasattr(x, "item") else x, -1) for x in rows[cols["item"]]])
        fallback = self.info.rating_mean if self.task == EXPLICIT else np.nan
        out = np.full(len(rows), fallback, dtype=np.float64)
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            codes, inverse = np.unique(u[ok], return_inverse=True)
            scores = self._scores(torch.as_tensor(codes), exclude_seen=False)
            out[ok] = scores[torch.as_tensor(inverse), torch.as_tensor(i[ok])].numpy()
        return pd.Series(out, index=rows.index, name="rating" if self.task == EXPLICIT else "score")
