"""Networks for small, wide clinical tables. Each takes `(x_num, x_cat)` and returns logits `(n, n_outputs)`.

Imported only when a trial builds a network (torch at module level is fine here, not in `plugin.py`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from automl.api import ACTIVATIONS, FeatureInput


class SelfNormalizingNet(nn.Module):
    """Self-normalising network (Klambauer et al., 2017): SELU units, LeCun-normal weights, alpha dropout.

    Activations keep zero mean and unit variance through depth without batch statistics, which are noisy on
    a few hundred rows; alpha dropout (on the inputs too) regularises without breaking that fixed point.
    """

    def __init__(self, n_num: int, cardinalities: tuple[int, ...], n_outputs: int, widths: list[int],
                 dropout: float, input_dropout: float) -> None:
        super().__init__()
        self.input = FeatureInput(n_num, cardinalities)
        layers: list[nn.Module] = [nn.AlphaDropout(input_dropout)]
        d = self.input.out_features
        for w in widths:
            layers += [nn.Linear(d, w), nn.SELU(), nn.AlphaDropout(dropout)]
            d = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, n_outputs)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.in_features))
                nn.init.zeros_(m.bias)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.input(x_num, x_cat)))


class StochasticGates(nn.Module):
    """One gate per input feature (Yamada et al., 2020, "stochastic gates").

    Training multiplies each feature by clamp(mu + noise, 0, 1); evaluation by clamp(mu, 0, 1), so a gate
    whose mu falls below 0 removes its feature exactly. `penalty()` is the expected number of open gates,
    sum_d P(gate_d > 0): added to the loss, it closes the gates of features that do not pay their way. A sum,
    not a mean, so each gate feels the same pull however many features the table has.
    """

    def __init__(self, n_features: int, sigma: float = 0.5) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.full((n_features,), 0.5))
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.mu + self.sigma * torch.randn_like(self.mu) if self.training else self.mu
        return x * z.clamp(0.0, 1.0)

    def penalty(self) -> torch.Tensor:
        # P(mu + N(0, sigma^2) > 0) = Phi(mu / sigma), via erf
        return (0.5 * (1 + torch.erf(self.mu / (self.sigma * math.sqrt(2))))).sum()


class GatedMLP(nn.Module):
    """Feature gates and strong input dropout in front of an MLP: a learned feature selection for tables with
    more columns than rows (hundreds of acoustic features, a couple of hundred patients)."""

    def __init__(self, n_num: int, cardinalities: tuple[int, ...], n_outputs: int, widths: list[int],
                 activation: str, dropout: float, input_dropout: float, gate_penalty: float) -> None:
        super().__init__()
        self.input = FeatureInput(n_num, cardinalities)
        d = self.input.out_features
        self.gates = StochasticGates(d)
        self.gate_penalty = gate_penalty
        layers: list[nn.Module] = [nn.Dropout(input_dropout)]
        for w in widths:
            layers += [nn.Linear(d, w), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            d = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, n_outputs)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.gates(self.input(x_num, x_cat))))

    def penalty(self) -> torch.Tensor:
        """Added to the training loss by the host (a network's `penalty()`, see `automl.specs.ModelFamily`)."""
        return self.gate_penalty * self.gates.penalty()
