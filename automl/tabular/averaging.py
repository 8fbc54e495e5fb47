"""Several tabular models as one: the fold models of a cross-validated trial, or an ensemble's members.

On a few hundred rows one network's test score swings with its seed (fold models of one trial on
breast_biopsy: test ROC AUC 0.958 to 0.999), and a refit on all development rows is one more such draw with
no validation rows left to stop it. Averaging the k fold models, each early-stopped on its own held-out
fold, removes most of that swing (AutoGluon's bagging does the same); the out-of-fold predictions the
evaluation calibrates on come from exactly these models. A weighted ensemble of several trials' models
averages the same way, with the weights ensemble selection chose.
"""

from __future__ import annotations

import torch
from torch import nn

from automl.tasks import BINARY, MULTICLASS


class WeightedAverage(nn.Module):
    """Averages its members' probabilities (classification) or values (regression) with fixed weights, and
    returns logits, like a member.

    Probabilities, not logits, are averaged: one overconfident member must not outvote the others.
    """

    def __init__(self, members: list[nn.Module], task: str, weights: list[float] | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = task
        w = torch.full((len(members),), 1.0 / len(members)) if weights is None else \
            torch.as_tensor(weights, dtype=torch.float32) / float(sum(weights))
        self.register_buffer("weights", w.reshape(-1, 1, 1), persistent=False)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([m(x_num, x_cat).float() for m in self.members])
        w = self.weights.to(outs.device)
        if self.task == BINARY:
            return torch.logit((outs.sigmoid() * w).sum(0), eps=1e-7)
        if self.task == MULTICLASS:
            return (outs.softmax(-1) * w).sum(0).clamp_min(1e-12).log()
        return (outs * w).sum(0)
