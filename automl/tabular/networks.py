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


class FeatureTokenizer(nn.Module):
    """One d-dimensional token per feature (numeric: value x weight + bias; categorical: embedding + bias)."""

    def __init__(self, n_num: int, cardinalities: tuple[int, ...], d_token: int) -> None:
        super().__init__()
        self.num_weight = nn.Parameter(torch.empty(n_num, d_token))
        self.num_bias = nn.Parameter(torch.empty(n_num, d_token))
        self.embeddings = nn.ModuleList(nn.Embedding(c, d_token) for c in cardinalities)
        self.cat_bias = nn.Parameter(torch.empty(len(cardinalities), d_token))
        for p in (self.num_weight, self.num_bias, self.cat_bias):
            nn.init.uniform_(p, -1 / math.sqrt(d_token), 1 / math.sqrt(d_token))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        tokens = [x_num.unsqueeze(-1) * self.num_weight + self.num_bias]
        if len(self.embeddings):
            cats = torch.stack([emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)
            tokens.append(cats + self.cat_bias)
        return torch.cat(tokens, dim=1)


class FTTransformer(nn.Module):
    """Feature-token transformer (Gorishniy et al., 2021): features as tokens, a [CLS] token read out."""

    def __init__(self, n_num: int, cardinalities: tuple[int, ...], n_outputs: int, d_token: int, n_heads: int,
                 n_blocks: int, ffn_factor: float, attention_dropout: float, ffn_dropout: float) -> None:
        super().__init__()
        self.tokenizer = FeatureTokenizer(n_num, cardinalities, d_token)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_token))
        layer = nn.TransformerEncoderLayer(
            d_token, n_heads, dim_feedforward=max(8, int(d_token * ffn_factor)), dropout=ffn_dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        layer.self_attn.dropout = attention_dropout
        self.encoder = nn.TransformerEncoder(layer, n_blocks, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, n_outputs))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x_num, x_cat)
        tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
        return self.head(self.encoder(tokens)[:, 0])


class CrossLayer(nn.Module):
    """DCN-v2 cross layer: x_{l+1} = x_0 * (W x_l + b) + x_l."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, d)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCNv2(nn.Module):
    """Deep & Cross Network v2 (Wang et al., 2021): explicit feature crosses beside a deep tower."""

    def __init__(self, n_num: int, cardinalities: tuple[int, ...], n_outputs: int, n_cross: int,
                 deep_widths: list[int], dropout: float) -> None:
        super().__init__()
        self.input = FeatureInput(n_num, cardinalities)
        d = self.input.out_features
        self.cross = nn.ModuleList(CrossLayer(d) for _ in range(n_cross))
        deep, width = [], d
        for w in deep_widths:
            deep += [nn.Linear(width, w), nn.ReLU(), nn.Dropout(dropout)]
            width = w
        self.deep = nn.Sequential(*deep)
        self.head = nn.Linear(d + (width if deep_widths else 0), n_outputs)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        x0 = self.input(x_num, x_cat)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        parts = [x, self.deep(x0)] if len(self.deep) else [x]
        return self.head(torch.cat(parts, dim=1))
