"""`TabularModule`: the LightningModule around a tabular network, for the Lightning engine and for users.

The fast engine trains the same network with the same loss (`tabular_loss`) and optimiser
(`make_optimizer`) without importing Lightning; this module is what `ModelFamily.build` means for families
that give `network=`, and what `TabularPredictor.lightning_module()` returns.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from automl.tabular.pipeline import network_penalty, tabular_loss
from automl.training.fast import make_optimizer


class TabularModule(pl.LightningModule):
    def __init__(self, net: torch.nn.Module, task: str, hp: dict[str, Any],
                 class_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.net, self.task, self.hp = net, task, dict(hp)
        self.register_buffer("class_weight", class_weight, persistent=False)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.net(x_num, x_cat)

    def _loss(self, batch: tuple) -> torch.Tensor:
        return tabular_loss(self(batch[0], batch[1]), batch[2], self.hp, self.task, self.class_weight) \
            + network_penalty(self.net)

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[2]))
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[2]))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.hp)
