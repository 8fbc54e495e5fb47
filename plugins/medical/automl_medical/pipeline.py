"""The medical data path: the host's tabular pipeline, plus a network's own penalty in the training loss.

A network may define `penalty() -> Tensor` (the gated MLP's sparsity term on its feature gates); everything
else, from the split and the cross-validation folds to the saved predictor, is the host's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.tabular.pipeline import TabularPipeline

if TYPE_CHECKING:  # pragma: no cover
    import torch


class MedicalPipeline(TabularPipeline):
    def loss(self, net: "torch.nn.Module", batch: tuple, params: dict[str, Any]) -> "torch.Tensor":
        loss = super().loss(net, batch, params)
        penalty = getattr(net, "penalty", None)
        return loss + penalty() if callable(penalty) else loss


def medical_pipeline(options: Any) -> MedicalPipeline:
    return MedicalPipeline()
