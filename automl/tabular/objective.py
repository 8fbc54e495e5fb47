"""The tabular training objective and what a network's outputs mean, shared by training, modules and predictors.

Binary networks output one logit (P(positive) by the sigmoid), multiclass networks one logit per class
(softmax), regression networks one value in standardised target units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.tasks import BINARY, MULTICLASS

if TYPE_CHECKING:  # pragma: no cover
    import torch


def tabular_loss(logits: "torch.Tensor", y: "torch.Tensor", hp: dict[str, Any], task: str,
                 class_weight: "torch.Tensor | None") -> "torch.Tensor":
    """Cross-entropy (binary / multiclass, class-weighted when `hp["class_weight"]` is "balanced") or MSE."""
    import torch.nn.functional as F

    balanced = hp.get("class_weight") == "balanced" and class_weight is not None
    if task == BINARY:
        pos_weight = (class_weight[1] / class_weight[0]) if balanced else None
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y, pos_weight=pos_weight)
    if task == MULTICLASS:
        return F.cross_entropy(logits, y, weight=class_weight if balanced else None)
    return F.mse_loss(logits.squeeze(-1), y)


def network_penalty(net: Any) -> Any:
    """A network's own regulariser: `net.penalty()` when it defines one (e.g. a sparsity term), else 0."""
    penalty = getattr(net, "penalty", None)
    return penalty() if callable(penalty) else 0.0


def outputs_to_scores(logits: "torch.Tensor", task: str) -> "torch.Tensor":
    """P(positive) for binary, class probabilities for multiclass, the value itself for regression."""
    if task == BINARY:
        return logits.squeeze(-1).sigmoid()
    if task == MULTICLASS:
        return logits.softmax(-1)
    return logits.squeeze(-1)
