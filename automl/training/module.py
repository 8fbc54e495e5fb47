"""`NetworkModule`: a plain network and its device data's loss as a LightningModule.

What `trainer.engine=lightning` trains for families that give `network=`: `training_step` is the same
`data.loss(net, batch, hp)` the fast engine minimises and the optimiser is the same AdamW, so both engines
train the same thing. `forward` is the network's own.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning.pytorch as pl
import torch

from automl.training.engine import make_optimizer


def _rows(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (list, tuple)) else batch
    return len(first) if hasattr(first, "__len__") else 1


class NetworkModule(pl.LightningModule):
    def __init__(self, net: torch.nn.Module, loss: Callable[[torch.nn.Module, Any], torch.Tensor],
                 hp: dict[str, Any]) -> None:
        super().__init__()
        self.net, self.hp = net, dict(hp)
        self._loss_fn = loss

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.net(*args, **kwargs)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss_fn(self.net, batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=_rows(batch))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing per batch: the host's callback scores all validation rows with the search's objective."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.hp)


def unwrap(model: Any) -> Any:
    """The network inside a NetworkModule (device data predicts with the network), else the model."""
    return model.net if isinstance(model, NetworkModule) else model
