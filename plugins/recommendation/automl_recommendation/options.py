"""What a recommendation run can be told: task names, typed `domain.options`, and the shape of prepared data.

Light on purpose (no torch, no pandas): the plugin module imports it when `automl plugins` lists plugins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from automl.api import REGRESSION, DataInfo

#: Top-K recommendation from an interaction log: every interaction is a positive, nothing is a label.
IMPLICIT = "implicit"
#: Rating prediction. It runs under the host's task name `regression`, so the host's rmse and mae apply.
EXPLICIT = REGRESSION
#: What `domain.task` may say, and the task each word means.
TASK_WORDS = {"auto": IMPLICIT, "implicit": IMPLICIT, "topk": IMPLICIT, "explicit": EXPLICIT, "rating": EXPLICIT,
              "regression": EXPLICIT}


@dataclass
class RecommendationOptions:
    """`domain.options` of the recommendation domain.

    Column names default to the registered dataset's own (movielens: userId, movieId, timestamp, rating) and,
    for a file of your own (`data.path`), to `user`, `item`, `timestamp` and `rating`.
    """

    user_column: Optional[str] = None
    item_column: Optional[str] = None
    #: Orders each user's interactions (numbers, or dates pandas can parse). Required for the implicit task.
    time_column: Optional[str] = None
    #: Required for the explicit task; ignored by the implicit one (every rating is an interaction).
    rating_column: Optional[str] = None
    #: Cut-off of the extra top-K metrics in metrics.json (hr@K, ndcg@K, recall@K, coverage@K).
    k: int = 10
    #: Longest history a sequential model may read; its searched sequence length never exceeds it.
    max_seq_len: int = 100
    #: Users with fewer interactions train the models but are not evaluated (leave-last-out needs three).
    min_interactions: int = 3
    #: Item columns of free text (movielens: [title, genres]) read by the pre-trained text encoder (`text:`)
    #: into a content tower: an item's factor adds a projection of its text's embedding, so items with few
    #: interactions still rank. Searched (content none / text) by the factorisation families. []: none.
    item_text: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RecInfo(DataInfo):
    """What a model family may know about prepared interactions (saved as JSON in the predictor)."""

    n_users: int = 0
    n_items: int = 0
    #: Cap of the searched sequence length: `max_seq_len`, or the longest training history if shorter.
    max_seq_len: int = 100
    #: Explicit task: mean, lowest and highest training rating (predictions are clipped to that range).
    rating_mean: float = 0.0
    rating_min: float = 0.0
    rating_max: float = 0.0
    #: Size of each item's text embedding (`item_text`); 0: no item text, no content tower.
    text_dim: int = 0
