"""The recommendation plugin: its domain, the movielens dataset, three recommender families, top-K metrics.

Registered through the entry point `automl = {recommendation = "automl_recommendation.plugin"}`. Nothing
heavy is imported here: `automl plugins` imports this module and must answer fast.
"""

from __future__ import annotations

from typing import Any

from automl.api import DomainSpec, hookimpl

from automl_recommendation.datasets import DATASETS, DOMAIN
from automl_recommendation.evaluation import evaluate
from automl_recommendation.options import EXPLICIT, IMPLICIT, RecommendationOptions


def make_pipeline(options: Any) -> Any:
    from automl_recommendation.pipeline import RecommendationPipeline

    return RecommendationPipeline(options)


RECOMMENDATION = DomainSpec(
    name=DOMAIN,
    description="top-K recommendation from interaction logs (implicit) and rating prediction (explicit)",
    metrics={
        IMPLICIT: ("ndcg@10", "hr@10", "recall@10", "mrr", "coverage@10"),
        EXPLICIT: ("rmse", "mae"),  # the host's own metrics
    },
    families=("mf_bpr", "neumf", "sasrec"),
    default_dataset="movielens",
    pipeline=make_pipeline,
    options=RecommendationOptions,
    evaluate=evaluate,
    intended_use=(
        "Ranks items a known user has not interacted with yet (top-K), or predicts ratings, from the interaction "
        "log it was trained on. Users it never saw get the most popular items; items without interactions are "
        "never recommended; offline metrics come from each user's latest interaction and do not measure the "
        "effect of the recommendations themselves (run an online test)."),
)


@hookimpl
def automl_register_domains() -> list[DomainSpec]:
    return [RECOMMENDATION]


@hookimpl
def automl_register_datasets():
    return list(DATASETS)


@hookimpl
def automl_register_model_families():
    from automl_recommendation.families import FAMILIES

    return list(FAMILIES)


@hookimpl
def automl_register_metrics():
    from automl_recommendation.metrics import METRICS

    return list(METRICS)


@hookimpl
def automl_config_dirs() -> list[str]:
    return ["pkg://automl_recommendation.conf"]


@hookimpl
def automl_report_sections(run: Any) -> list[Any]:
    """The domain's own sections of report.html (automl_recommendation/report.py)."""
    from automl_recommendation.report import sections

    return sections(run)
