"""The finance_risk plugin: the hooks the automl host calls (entry point `finance_risk` in group `automl`).

Registers the `finance_risk` domain, its three loan books and the Gini and KS metrics; reuses the host's
ROC AUC, PR AUC, Brier and log-loss metrics and its MLP, DCN-v2 and FT-Transformer families by name. Nothing
heavy is imported here: `automl plugins` imports this module and must answer fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.api import BINARY, DomainSpec, hookimpl
from automl_finance_risk.datasets import DATASETS
from automl_finance_risk.evaluate import evaluate
from automl_finance_risk.metrics import METRICS
from automl_finance_risk.options import FinanceRiskOptions

if TYPE_CHECKING:  # pragma: no cover
    from automl.api import Pipeline

NAME = "finance_risk"
CONFIG_DIR = "pkg://automl_finance_risk.conf"


def pipeline(options: Any) -> "Pipeline":
    """The host's tabular pipeline, with class weighting (none / balanced) as a searched option."""
    from automl.api import TabularPipeline

    return TabularPipeline(search_class_weight=True)


DOMAIN = DomainSpec(
    name=NAME,
    description="credit default risk: P(bad) per applicant, calibrated, with a cut-off for an approval or "
                "bad-rate target, gains table, KS/ROC curves and fairness at the cut-off",
    metrics={BINARY: ("roc_auc", "gini", "ks", "pr_auc", "brier", "log_loss")},
    families=("mlp", "dcn", "ft_transformer", "text_fusion"),  # text_fusion: only data with text columns
    default_dataset="credit_data",
    pipeline=pipeline,
    options=FinanceRiskOptions,
    evaluate=evaluate,
    intended_use=(
        "Ranks credit applicants by calibrated probability of default and proposes an accept / decline cut-off, "
        "as input to a credit decision that a risk team owns. Not for automated decisions without human review "
        "and adverse-action reasons; valid only for applicants like the training book (same product, channel "
        "and period); prohibited bases (e.g. marital status under ECOA) are reported on, not scored with; "
        "monitor calibration and fairness at the cut-off after deployment."),
)


@hookimpl
def automl_register_domains() -> list[DomainSpec]:
    return [DOMAIN]


@hookimpl
def automl_register_datasets():
    return list(DATASETS)


@hookimpl
def automl_register_metrics():
    return list(METRICS)


@hookimpl
def automl_config_dirs() -> list[str]:
    return [CONFIG_DIR]


@hookimpl
def automl_report_sections(run: Any) -> list[Any]:
    """The domain's own sections of report.html (automl_finance_risk/report.py)."""
    from automl_finance_risk.report import sections

    return sections(run)
