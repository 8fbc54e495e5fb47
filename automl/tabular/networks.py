"""Plain torch networks for tabular data. Each takes `(x_num, x_cat)` and returns logits `(n, n_outputs)`.

`TabularStack` (the `mlp` and `tabm` families) is built from the stacked layers of `automl.tabular.stacked`, so
several of them train as one model; `DCNv2` and `FTTransformer` train one at a time. `FeatureInput` and
`ACTIVATIONS` are building blocks plugins use (`automl.api`). They import nothing but torch, so the fast engine
trains them without loading Lightning.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from automl.tabular.stacked import embedding_dim

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "selu": nn.SELU}


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
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
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


class TabularStack(nn.Module):
    """K tabular networks of one structure as one model: the `mlp` and `tabm` families.

    Per member: a numeric transform (`NumericTransform`), optional numeric embeddings (piecewise-linear or
    periodic, Gorishniy et al. 2022), categorical embeddings, then `depth` blocks of Linear -> ReLU -> Dropout and
    a linear head. With `ensemble > 1` each member is a TabM (Gorishniy et al., "TabM: Advancing Tabular Deep
    Learning with Parameter-Efficient Ensembling", ICLR 2025): `ensemble` submodels sharing the block weights,
    each with its own scalings, biases and head ("batch": BatchEnsemble in every block; "mini": one scaling
    before a fully shared backbone); they train on the mean of their losses and predict the mean of their
    probabilities. With `ensemble == 1` it is the plain MLP of the TabM paper.

    Inputs are (rows, features) for a stack of one, (K, rows, features) for K members; `forward` returns logits
    (the submodels' probabilities averaged, as logits), `ensemble_logits` each submodel's (K, e, rows, out).
    """

    def __init__(self, members: list[dict], n_num: int, n_indicators: int, cardinalities: tuple[int, ...],
                 n_outputs: int, task: str, ensemble: int = 1, arch: str = "plain") -> None:
        from automl.tabular import stacked as S

        super().__init__()
        self.k, self.task, self.ensemble, self.arch = len(members), task, ensemble, arch
        first = members[0]
        depth, embedding = int(first["depth"]), first.get("embedding", "none")
        if any(int(m["depth"]) != depth or m.get("embedding", "none") != embedding for m in members):
            raise ValueError("members of one stack share their depth and numeric embedding")
        n_values = n_num - n_indicators
        self.transform = S.NumericTransform([m.get("transform", "standard") for m in members], n_values, n_indicators)
        d_num, chunks = n_num, [1] * n_num
        self.embedding: nn.Module | None = None
        if embedding == "piecewise_linear" and n_values:
            self.embedding = S.PiecewiseLinearEmbeddings([int(m["n_bins"]) for m in members], n_values,
                                                         EMBEDDING_SIZE)
        elif embedding == "periodic" and n_values:
            self.embedding = S.PeriodicEmbeddings([float(m["frequency_scale"]) for m in members], n_values,
                                                  PERIODIC_FREQUENCIES, EMBEDDING_SIZE)
        if self.embedding is not None:
            d_num = self.embedding.out_features + n_indicators
            chunks = [EMBEDDING_SIZE] * n_values + [1] * n_indicators
        self.n_values = n_values
        self.categorical = S.StackedEmbeddings(self.k, cardinalities) if cardinalities else None
        d_in = d_num + (self.categorical.out_features if self.categorical is not None else 0)
        if self.categorical is not None:
            chunks += self.categorical.dims
        widths = [int(m["width"]) for m in members]
        r_init = "normal" if self.embedding is not None else "random-signs"
        layers, dropouts, d = [], [], d_in
        for i in range(depth):
            if ensemble > 1 and arch == "batch":
                layers.append(S.StackedBatchEnsembleLinear(self.k, ensemble, d, widths, scale_in=True, scale_out=True,
                                                           r_init=r_init if i == 0 else "ones",
                                                           r_chunks=chunks if i == 0 else None))
            else:
                layers.append(S.StackedLinear(self.k, d, widths))
            dropouts.append(S.StackedDropout([float(m["dropout"]) for m in members]))
            d = widths
        self.blocks = nn.ModuleList(layers)
        self.dropouts = nn.ModuleList(dropouts)
        # TabM-mini: one scaling per submodel before the fully shared backbone
        self.scaling = S.StackedScaling(self.k, ensemble, d_in, r_init, chunks) \
            if ensemble > 1 and arch == "mini" else None
        # TabM's heads are separate per submodel (its LinearEnsemble); the MLP has one
        self.head = S.StackedEnsembleHead(self.k, ensemble, d, n_outputs) if ensemble > 1 else \
            S.StackedLinear(self.k, d, n_outputs)

    def fit_inputs(self, x_num: torch.Tensor, member: int = 0) -> None:
        """Data-dependent buffers of one member from its training rows' `x_num`: the transform's quantiles, then
        the embedding's bins on the values as the transform presents them."""
        self.transform.fit_inputs(member, x_num)
        fit = getattr(self.embedding, "fit_inputs", None)
        if fit is not None:
            fit(member, self.transform.member(member, x_num))

    def _features(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        x = self.transform(x_num)
        if self.embedding is not None:
            x = torch.cat([self.embedding(x), x[..., self.n_values:]], dim=-1)
        if self.categorical is not None:
            x = torch.cat([x, self.categorical(x_cat)], dim=-1)
        return x

    def ensemble_logits(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Each submodel's logits, (K, e, rows, outputs) ((e, rows, outputs) for a stack of one)."""
        from automl.tabular.stacked import stack_inputs

        x_num, x_cat, single = stack_inputs(x_num, x_cat, self.k)
        x = self._features(x_num, x_cat).unsqueeze(1).expand(-1, self.ensemble, -1, -1)
        if self.scaling is not None:
            x = self.scaling(x)
        for layer, dropout in zip(self.blocks, self.dropouts):
            x = dropout(torch.relu(layer(x)))
        out = self.head(x)
        return out[0] if single else out

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        logits = self.ensemble_logits(x_num, x_cat)
        if self.ensemble == 1:
            return logits.squeeze(-3)
        return combine_submodels(logits, self.task)


#: Embedding size of each numeric column (piecewise-linear and periodic), and the periodic frequencies: the
#: TabM and RealMLP defaults, fixed so that members of one stack line up.
EMBEDDING_SIZE, PERIODIC_FREQUENCIES = 16, 16


def combine_submodels(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Average submodels' probabilities (axis -3) and return logits: one overconfident submodel must not
    outvote the others (binary: logit of the mean P, multiclass: log of the mean distribution)."""
    if task == "binary":
        return torch.logit(logits.float().sigmoid().mean(-3), eps=1e-7)
    if task == "multiclass":
        return logits.float().softmax(-1).mean(-3).clamp_min(1e-12).log()
    return logits.mean(-3)
