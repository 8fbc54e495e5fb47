"""Plain torch networks for tabular data. Each takes `(x_num, x_cat)` and returns logits `(n, n_outputs)`.

They import nothing but torch, so the fast engine trains them without loading Lightning; the host wraps them
in `automl.tabular.module.TabularModule` when a `LightningModule` is wanted.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "selu": nn.SELU}


def embedding_dim(cardinality: int) -> int:
    """fast.ai's rule of thumb, capped: small tables get small embeddings."""
    return int(min(16, max(2, round(1.6 * cardinality**0.56))))


class FeatureInput(nn.Module):
    """Numeric features as they are, each categorical column through its own embedding; concatenated."""

    def __init__(self, n_num: int, cardinalities: tuple[int, ...]) -> None:
        super().__init__()
        self.n_num = n_num
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim(c)) for c in cardinalities)
        self.out_features = n_num + sum(e.embedding_dim for e in self.embeddings)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        if not len(self.embeddings):
            return x_num
        parts = [x_num] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=1)


def _norm(kind: str, width: int) -> nn.Module:
    return {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[kind](width) if kind != "none" \
        else nn.Identity()


class MLPBlock(nn.Module):
    def __init__(self, d_in: int, d_out: int, activation: str, dropout: float, norm: str, residual: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = _norm(norm, d_out)
        self.act = ACTIVATIONS[activation]()
        self.drop = nn.AlphaDropout(dropout) if activation == "selu" else nn.Dropout(dropout)
        self.residual = residual
        # A projection keeps the shortcut when the width changes.
        self.shortcut = (nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out, bias=False)) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.norm(self.linear(x))))
        return h + self.shortcut(x) if self.shortcut is not None else h


class MLPNet(nn.Module):
    """Multi-layer perceptron with searched depth, per-layer width, activation, dropout, norm, residuals."""

    def __init__(self, n_num: int, cardinalities: tuple[int, ...], n_outputs: int, widths: list[int],
                 activation: str = "relu", dropout: float = 0.0, norm: str = "none", residual: bool = False) -> None:
        super().__init__()
        self.input = FeatureInput(n_num, cardinalities)
        blocks, d = [], self.input.out_features
        for w in widths:
            blocks.append(MLPBlock(d, w, activation, dropout, norm, residual))
            d = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(d, n_outputs)
        if activation == "selu":  # self-normalising networks need LeCun-normal initialisation
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.in_features))
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.input(x_num, x_cat)))
