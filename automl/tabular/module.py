"""`TabularModule`: a tabular network with the host's tabular objective, as a LightningModule.

What `TabularPredictor.lightning_module()` returns, so a saved model can be fine-tuned with a
`lightning.Trainer`. During a search the Lightning engine uses `automl.training.module.NetworkModule` with the
device data's own loss, which for tabular data is this same objective.
"""

from __future__ import annotations

from typing import Any

import torch

from automl.tabular.objective import network_penalty, tabular_loss
from automl.training.module import NetworkModule


class TabularModule(NetworkModule):
    def __init__(self, net: torch.nn.Module, task: str, hp: dict[str, Any],
                 class_weight: torch.Tensor | None = None) -> None:
        super().__init__(net, self._tabular_loss, hp)
        self.task = task
        self.register_buffer("class_weight", class_weight, persistent=False)

    def _tabular_loss(self, net: torch.nn.Module, batch: tuple) -> torch.Tensor:
        return tabular_loss(net(batch[0], batch[1]), batch[2], self.hp, self.task, self.class_weight) \
            + network_penalty(net)

    def _loss(self, batch: tuple) -> torch.Tensor:
        return self._tabular_loss(self.net, batch)

    def validation_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        """Validation loss on your own (x_num, x_cat, y) batches when you fine-tune with a Trainer."""
        loss = self._loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[2]))
        return loss
