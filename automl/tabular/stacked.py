"""Layers with a leading member dimension: K networks of one structure trained as one model.

Every parameter and buffer of a stacked layer has K as its first dimension, and every activation is
(K, rows, ...), so K networks run as a handful of batched matrix products instead of K small ones. This is
horizontally fused training (HFTA, Wang et al., MLSys 2021); with per-member widths padded to the largest
and masked, as in ParallelMLPs (Farias et al., 2022). One implementation serves every case:

- a single trial is a stack of one (K = 1), so a saved model and a model trained in a batch are the same code;
- several trials with one structure (family, depth, embedding kind, batch size) share a stack;
- the k fold models of a cross-validated trial are k members, each with its own training rows;
- TabM's k weight-sharing submodels (`BatchEnsemble`) are an inner axis of each member.

Widths may differ between members: each member's true sizes are recorded, its padded weights start at zero
and receive zero gradient (a padded unit's input weights and output weights are both zero), so a member
trains exactly as its unpadded network would. `member_state(model, k)` slices a member out in the layout of
a stack of one built from that member's parameters alone.

Data-dependent state (quantiles of the numeric inputs, the bins of piecewise-linear embeddings) lives in
buffers that `fit_inputs(member, x_num)` fills from the member's own training rows before training, so it is
saved with the weights and exported with the graph.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import torch
from torch import nn


def _sizes(value: int | Sequence[int], k: int) -> list[int]:
    return [int(value)] * k if isinstance(value, int) else [int(v) for v in value]


class Stacked(nn.Module):
    """Base of the stacked layers: `k` members; `slices(m)` says how each tensor of member `m` is cut out.

    `MEMBER_LISTS` names the attributes that hold one Python value per member (true sizes, kinds), which
    `keep` cuts down with the tensors."""

    MEMBER_LISTS: tuple[str, ...] = ()

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the members at `index` (positions, in order): every saved tensor and per-member list."""
        for name, tensor in _saved(self).items():
            kept = tensor.detach().index_select(0, index)
            # a new Parameter, not new .data: autograd remembers a parameter's shape once it has had a gradient
            setattr(self, name, nn.Parameter(kept, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else kept)
        chosen = index.tolist()
        for name in self.MEMBER_LISTS:
            setattr(self, name, [getattr(self, name)[m] for m in chosen])
        self.k = len(chosen)

    def extend(self, other: "Stacked") -> None:
        """Append the members of `other`, a layer of the same structure and padded sizes (continuous batching:
        new members join a stack at an epoch boundary)."""
        theirs = _saved(other)
        for name, tensor in _saved(self).items():
            more = theirs[name].detach().to(tensor.device)
            if more.shape[1:] != tensor.shape[1:]:
                raise ValueError(f"{type(self).__name__}.{name}: members of shape {tuple(more.shape[1:])} cannot "
                                 f"join a stack of {tuple(tensor.shape[1:])}")
            joined = torch.cat([tensor.detach(), more])
            setattr(self, name, nn.Parameter(joined, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else joined)
        for name in self.MEMBER_LISTS:
            setattr(self, name, list(getattr(self, name)) + list(getattr(other, name)))
        self.k += other.k

    def slices(self, m: int) -> dict[str, tuple[slice, ...]]:
        """Tensor name -> the index of member `m`'s part (its leading dim kept, of size one)."""
        return {name: (slice(m, m + 1),) for name in _saved(self)}


def _saved(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's own saved tensors: parameters and persistent buffers (what its state dict holds)."""
    tensors = dict(module.named_parameters(recurse=False))
    tensors.update((n, b) for n, b in module.named_buffers(recurse=False)
                   if b is not None and n not in module._non_persistent_buffers_set)
    return tensors


def member_state(model: nn.Module, m: int) -> dict[str, torch.Tensor]:
    """Member `m` of a stacked model as the state dict of a stack of one built from its own parameters."""
    state: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():
        if not isinstance(module, Stacked):
            if any(True for _ in module.parameters(recurse=False)):
                raise TypeError(f"{type(module).__name__} at {prefix!r} is not a stacked layer")
            continue
        tensors = _saved(module)
        for name, index in module.slices(m).items():
            if tensors.get(name) is not None:
                state[f"{prefix}.{name}" if prefix else name] = tensors[name][index].detach().clone()
    return state


def keep_members(model: nn.Module, index: Sequence[int]) -> None:
    """Cut a stacked model down to the members at `index`, in place: members that stopped training cost no
    more compute (every stacked layer, and the model's own `k`)."""
    chosen = torch.as_tensor(list(index), dtype=torch.long, device=next(model.parameters()).device)
    for module in stacked_modules(model):
        module.keep(chosen)
    if isinstance(getattr(model, "k", None), int):
        model.k = len(chosen)


def extend_members(model: nn.Module, other: nn.Module) -> None:
    """Append the members of `other` (a stacked model of the same structure and padded sizes) to `model`, in
    place, after its own."""
    mine, theirs = list(stacked_modules(model)), list(stacked_modules(other))
    if len(mine) != len(theirs) or any(type(a) is not type(b) for a, b in zip(mine, theirs)):
        raise ValueError("only a stacked model of the same structure can join a stack")
    for a, b in zip(mine, theirs):
        a.extend(b)
    if isinstance(getattr(model, "k", None), int):
        model.k += int(getattr(other, "k"))


def load_member_state(model: nn.Module, m: int, state: dict[str, torch.Tensor]) -> None:
    """Write a stack of one's state (`member_state`'s layout) into member `m` of `model`."""
    with torch.no_grad():
        for prefix, module in model.named_modules():
            if not isinstance(module, Stacked):
                continue
            tensors = _saved(module)
            for name, index in module.slices(m).items():
                key = f"{prefix}.{name}" if prefix else name
                if tensors.get(name) is not None and key in state:
                    tensors[name][index].copy_(state[key])


class StackedLinear(Stacked):
    """K linear layers, x (K, rows, d_in) -> (K, rows, d_out), with member m of sizes d_in[m] x d_out[m].

    Initialised per member as `torch.nn.Linear` is (uniform in +-1/sqrt(fan_in) for weight and bias).
    """

    MEMBER_LISTS = ("d_in", "d_out")

    def __init__(self, k: int, d_in: int | Sequence[int], d_out: int | Sequence[int], bias: bool = True) -> None:
        super().__init__(k)
        self.d_in, self.d_out = _sizes(d_in, k), _sizes(d_out, k)
        self.weight = nn.Parameter(torch.zeros(k, max(self.d_in), max(self.d_out)))
        self.bias = nn.Parameter(torch.zeros(k, max(self.d_out))) if bias else None
        with torch.no_grad():
            for m, (i, o) in enumerate(zip(self.d_in, self.d_out)):
                bound = 1.0 / math.sqrt(i)
                self.weight[m, :i, :o].uniform_(-bound, bound)
                if self.bias is not None:
                    self.bias[m, :o].uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(self.k, -1, shape[-1])
        out = torch.bmm(x, self.weight) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)
        return out.reshape(*shape[:-1], out.shape[-1])

    def slices(self, m: int) -> dict[str, tuple[slice, ...]]:
        keep = slice(m, m + 1)
        out = {"weight": (keep, slice(0, self.d_in[m]), slice(0, self.d_out[m]))}
        if self.bias is not None:
            out["bias"] = (keep, slice(0, self.d_out[m]))
        return out


class StackedDropout(Stacked):
    """Dropout with a rate per member (a searched hyperparameter); identity in eval mode."""

    def __init__(self, rates: Sequence[float]) -> None:
        super().__init__(len(rates))
        self.register_buffer("rate", torch.as_tensor(list(rates), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not bool((self.rate > 0).any()):
            return x
        keep = (1.0 - self.rate).view(self.k, *([1] * (x.dim() - 1)))
        # One uniform draw per unit and row, shared by the members (common random numbers), each compared with
        # its member's keep rate: every member's units are still dropped independently with its own rate, at
        # 1/K of the random numbers (drawing them was an eighth of a wide stack's step on a CPU).
        draws = torch.rand(x.shape[1:], dtype=x.dtype, device=x.device)
        return x * torch.where(draws < keep, 1.0 / keep, 0.0)


class StackedEmbeddings(Stacked):
    """One embedding table per categorical column and member: codes (K, rows, columns) -> (K, rows, sum of dims).

    Code 0 is missing or unseen (the preprocessing's convention). fast.ai's size rule, as the host's
    `FeatureInput` uses.
    """

    def __init__(self, k: int, cardinalities: Sequence[int]) -> None:
        super().__init__(k)
        self.cardinalities = [int(c) for c in cardinalities]
        self.dims = [embedding_dim(c) for c in self.cardinalities]
        self.offsets = [0]
        for c in self.cardinalities[:-1]:
            self.offsets.append(self.offsets[-1] + c)
        self.register_buffer("offset", torch.as_tensor(self.offsets, dtype=torch.long), persistent=False)
        width = max(self.dims, default=0)
        self.weight = nn.Parameter(torch.randn(k, sum(self.cardinalities), width))  # N(0, 1), as nn.Embedding
        mask = torch.zeros(len(self.dims), width)
        for j, d in enumerate(self.dims):
            mask[j, :d] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    @property
    def out_features(self) -> int:
        return sum(self.dims)

    def forward(self, x_cat: torch.Tensor) -> torch.Tensor:
        k, rows, n = x_cat.shape
        index = (x_cat + self.offset).reshape(k, rows * n)
        table = self.weight
        out = torch.gather(table, 1, index.unsqueeze(-1).expand(-1, -1, table.shape[-1]))
        out = out.reshape(k, rows, n, -1)
        if len(set(self.dims)) == 1:
            return out.reshape(k, rows, -1)
        return torch.cat([out[:, :, j, :d] for j, d in enumerate(self.dims)], dim=-1)


def embedding_dim(cardinality: int) -> int:
    """fast.ai's rule of thumb, capped: small tables get small embeddings."""
    return int(min(16, max(2, round(1.6 * cardinality**0.56))))


# -- numeric inputs: transforms and embeddings ---------------------------------------------------------------


#: How the numeric columns are presented to a network (a searched choice).
TRANSFORMS = ("standard", "quantile_normal", "robust_clip")
#: Probability levels of the quantile transform's knots.
QUANTILE_LEVELS = 33


class NumericTransform(Stacked):
    """The numeric value columns as each member asked for them; missing-value indicators pass through.

    The preprocessing has imputed and standardised every column; on top of that a member sees them
    - `standard`: as they are;
    - `quantile_normal`: mapped through their training quantiles to normal scores (piecewise linear between
      33 knots), as the TabM authors preprocess (scikit-learn's QuantileTransformer, output "normal");
    - `robust_clip`: centred on the median, scaled by the interquartile range and smoothly clipped,
      x / sqrt(1 + (x / 3)^2), as RealMLP does (Holzmüller et al., NeurIPS 2024).
    The quantiles are fitted on the member's own training rows (`fit_inputs`).
    """

    MEMBER_LISTS = ("kinds",)

    def __init__(self, kinds: Sequence[str], n_values: int, n_indicators: int) -> None:
        super().__init__(len(kinds))
        unknown = sorted(set(kinds) - set(TRANSFORMS))
        if unknown:
            raise ValueError(f"unknown numeric transform {unknown[0]!r}: use one of {', '.join(TRANSFORMS)}")
        self.kinds, self.n_values, self.n_indicators = list(kinds), n_values, n_indicators
        choice = torch.zeros(self.k, len(TRANSFORMS))
        for m, kind in enumerate(kinds):
            choice[m, TRANSFORMS.index(kind)] = 1.0
        self.register_buffer("choice", choice)
        # knots: standardised values at the quantile levels; their normal scores are fixed
        levels = torch.linspace(0.0, 1.0, QUANTILE_LEVELS)
        scores = torch.special.ndtri(levels.clamp(1e-3, 1 - 1e-3))
        self.register_buffer("scores", scores, persistent=False)
        self.register_buffer("knots", torch.linspace(-3, 3, QUANTILE_LEVELS).repeat(self.k, n_values, 1))
        self.register_buffer("median", torch.zeros(self.k, n_values))
        self.register_buffer("iqr", torch.ones(self.k, n_values))

    def fit_inputs(self, m: int, x_num: torch.Tensor) -> None:
        values = x_num[:, : self.n_values].float()
        if not self.n_values or not len(values):
            return
        with torch.no_grad():
            levels = torch.linspace(0.0, 1.0, QUANTILE_LEVELS, device=values.device)
            q = torch.quantile(values, levels, dim=0).T  # (n_values, levels)
            self.knots[m].copy_(spread_ties(q))
            quartiles = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], device=values.device), dim=0)
            self.median[m].copy_(quartiles[1])
            self.iqr[m].copy_((quartiles[2] - quartiles[0]).clamp_min(1e-3))

    def slices(self, m: int) -> dict[str, tuple[slice, ...]]:
        keep = (slice(m, m + 1),)
        return {"choice": keep, "knots": keep, "median": keep, "iqr": keep}

    def forward(self, x_num: torch.Tensor) -> torch.Tensor:
        return self._transform(x_num, slice(None))

    def member(self, m: int, x_num: torch.Tensor) -> torch.Tensor:
        """Member `m`'s view of (rows, features) inputs (to fit what comes after the transform on it)."""
        return self._transform(x_num.unsqueeze(0), slice(m, m + 1))[0]

    def _transform(self, x_num: torch.Tensor, members: slice) -> torch.Tensor:
        if not self.n_values:
            return x_num
        kinds = set(self.kinds[members])
        if kinds == {"standard"}:
            return x_num
        values, rest = x_num[..., : self.n_values], x_num[..., self.n_values:]
        k = x_num.shape[0]
        shape = (k,) + (1,) * (values.dim() - 2) + (self.n_values,)
        c = self.choice[members].view(k, *([1] * (values.dim() - 1)), len(TRANSFORMS))
        mixed = c[..., 0] * values if "standard" in kinds else 0.0
        if "quantile_normal" in kinds:  # only what some member asked for is computed
            mixed = mixed + c[..., 1] * _piecewise_linear(values, self.knots[members].view(*shape, -1), self.scores)
        if "robust_clip" in kinds:
            robust = (values - self.median[members].view(shape)) / self.iqr[members].view(shape)
            mixed = mixed + c[..., 2] * (robust / torch.sqrt(1 + (robust / 3) ** 2))
        return torch.cat([mixed, rest], dim=-1)


def spread_ties(q: torch.Tensor) -> torch.Tensor:
    """Strictly increasing knots from quantiles with ties (a discrete or constant column: several levels at one
    value). The tied knots are spread around their value over a quarter of the gap to each neighbouring value,
    so the transform is continuous and smooth there (a gradient, e.g. an explanation's, sees no step) and a row at
    the tied value maps near the middle of its levels, as scikit-learn's QuantileTransformer maps ties."""
    import numpy as np

    values = q.detach().cpu().double().numpy()
    out = values.copy()
    for c, col in enumerate(values):  # a few dozen knots per column, at fit time only
        n, i = len(col), 0
        while i < n:
            j = i
            while j + 1 < n and col[j + 1] - col[i] <= 1e-9 * max(1.0, abs(col[i])):
                j += 1
            if j > i:
                below = col[i] - col[i - 1] if i > 0 else 1.0
                above = col[j + 1] - col[i] if j + 1 < n else 1.0
                out[c, i: j + 1] = np.linspace(col[i] - below / 4, col[i] + above / 4, j - i + 1)
            i = j + 1
    return torch.as_tensor(out, dtype=q.dtype, device=q.device)


def _piecewise_linear(x: torch.Tensor, knots: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of (knots -> scores) at x, flat beyond the ends, as a sum of clamped ramps
    (operations every exporter has: no search, no gather)."""
    widths = knots[..., 1:] - knots[..., :-1]
    ramps = ((x.unsqueeze(-1) - knots[..., :-1]) / widths).clamp(0.0, 1.0)
    return scores[0] + (ramps * (scores[1:] - scores[:-1])).sum(-1)


#: Numeric embeddings a family may search (Gorishniy et al., "On Embeddings for Numerical Features in Tabular
#: Deep Learning", NeurIPS 2022).
EMBEDDINGS = ("none", "piecewise_linear", "periodic")


class PiecewiseLinearEmbeddings(Stacked):
    """Piecewise-linear encoding of each value column over quantile bins of the member's training rows, a linear
    map per column to `d` dimensions, plus a linear embedding of the value itself (version "B" of
    `rtdl_num_embeddings.PiecewiseLinearEmbeddings`, as TabM uses it: the piecewise part starts at zero, so the
    embedding starts linear and learns its kinks).

    Bins are quantile bins of the training rows (`fit_inputs`); members may ask for different numbers of bins
    (padded and masked: a padded bin encodes to zero).
    """

    MEMBER_LISTS = ("n_bins",)

    def __init__(self, n_bins: Sequence[int], n_values: int, d: int) -> None:
        super().__init__(len(n_bins))
        self.n_bins, self.n_values, self.d = [int(b) for b in n_bins], n_values, d
        width = max(self.n_bins)
        self.register_buffer("edges", torch.linspace(-2, 2, width + 1).repeat(self.k, n_values, 1))
        mask = torch.zeros(self.k, 1, width)
        for m, b in enumerate(self.n_bins):
            mask[m, 0, :b] = 1.0
        self.register_buffer("mask", mask)
        bound = 1.0 / math.sqrt(d)
        self.weight = nn.Parameter(torch.zeros(self.k, n_values, width, d))
        self.linear_weight = nn.Parameter(torch.empty(self.k, n_values, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(self.k, n_values, d).uniform_(-bound, bound))

    @property
    def out_features(self) -> int:
        return self.n_values * self.d

    def fit_inputs(self, m: int, x_num: torch.Tensor) -> None:
        values = x_num[:, : self.n_values].float()
        if not len(values):
            return
        b = self.n_bins[m]
        with torch.no_grad():
            levels = torch.linspace(0.0, 1.0, b + 1, device=values.device)
            edges = spread_ties(torch.quantile(values, levels, dim=0).T)
            self.edges[m, :, : b + 1].copy_(edges)
            last = edges[:, -1:]
            self.edges[m, :, b + 1:].copy_(last + torch.arange(1, self.edges.shape[-1] - b, device=values.device))

    def slices(self, m: int) -> dict[str, tuple[slice, ...]]:
        keep, b = slice(m, m + 1), self.n_bins[m]
        return {"edges": (keep, slice(None), slice(0, b + 1)), "mask": (keep, slice(None), slice(0, b)),
                "weight": (keep, slice(None), slice(0, b)), "linear_weight": (keep,), "bias": (keep,)}

    def forward(self, x_num: torch.Tensor) -> torch.Tensor:
        x = x_num[..., : self.n_values]
        k, rest = x.shape[0], x.shape[1:-1]
        view = (k,) + (1,) * len(rest)
        left, right = self.edges[..., :-1], self.edges[..., 1:]
        left, right = left.view(*view, *left.shape[1:]), right.view(*view, *right.shape[1:])
        ramp = (x.unsqueeze(-1) - left) / (right - left)  # (K, ..., n_values, bins)
        # the first bin extends to -inf and the last real bin to +inf (PLE's open ends)
        last = torch.as_tensor(self.n_bins, device=x.device) - 1
        bins = torch.arange(ramp.shape[-1], device=x.device)
        lower = torch.where(bins == 0, -math.inf, 0.0)
        upper = torch.where(bins.view(1, -1) == last.view(-1, 1), math.inf, 1.0)  # (K, bins)
        encoded = torch.maximum(ramp, lower)
        encoded = torch.minimum(encoded, upper.view(*view, 1, -1)) * self.mask.view(*view, 1, -1)
        out = torch.einsum("krfb,kfbd->krfd", encoded.reshape(k, -1, *encoded.shape[-2:]), self.weight)
        out = out + x.reshape(k, -1, x.shape[-1]).unsqueeze(-1) * self.linear_weight.unsqueeze(1) + \
            self.bias.unsqueeze(1)
        return out.reshape(k, *rest, -1)


class PeriodicEmbeddings(Stacked):
    """PLR(lite) embeddings: sin / cos of trainable frequencies per value column, a linear map shared by the
    columns, and a ReLU (`rtdl_num_embeddings.PeriodicEmbeddings(lite=True)`); frequencies start at
    N(0, sigma), with sigma searched per member (the embedding's one sensitive knob)."""

    def __init__(self, sigmas: Sequence[float], n_values: int, n_frequencies: int, d: int) -> None:
        super().__init__(len(sigmas))
        self.n_values, self.d = n_values, d
        frequencies = torch.empty(self.k, n_values, n_frequencies)
        for m, sigma in enumerate(sigmas):
            nn.init.trunc_normal_(frequencies[m], 0.0, sigma, a=-3 * sigma, b=3 * sigma)
        self.frequencies = nn.Parameter(frequencies)
        bound = 1.0 / math.sqrt(2 * n_frequencies)
        self.weight = nn.Parameter(torch.empty(self.k, 2 * n_frequencies, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(self.k, d).uniform_(-bound, bound))

    @property
    def out_features(self) -> int:
        return self.n_values * self.d

    def forward(self, x_num: torch.Tensor) -> torch.Tensor:
        x = x_num[..., : self.n_values]
        k, rest = x.shape[0], x.shape[1:-1]
        flat = x.reshape(k, -1, self.n_values)
        angles = 2 * math.pi * flat.unsqueeze(-1) * self.frequencies.unsqueeze(1)
        periodic = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (K, rows, n_values, 2F)
        out = torch.einsum("krfp,kpd->krfd", periodic, self.weight) + self.bias.view(k, 1, 1, -1)
        return torch.relu(out).reshape(k, *rest, -1)


# -- TabM: k weight-sharing submodels inside each member -------------------------------------------------------


class StackedBatchEnsembleLinear(Stacked):
    """TabM's linear layer (BatchEnsemble, Wen et al. 2020; TabM, Gorishniy et al., ICLR 2025): one weight
    shared by a member's `e` submodels, each with its own input scaling r, output scaling s and bias.

    x (K, e, rows, d_in) -> (K, e, rows, d_out). `scale_out=False` (all but TabM's first layer keep s = 1 in
    the authors' initialisation, and TabM-mini has no s at all) leaves s out. The authors initialise r with
    random signs (plain inputs) or N(0, 1) (embedded inputs), s with ones, the biases identically.
    """

    MEMBER_LISTS = ("d_in", "d_out")

    def __init__(self, k: int, e: int, d_in: int | Sequence[int], d_out: int | Sequence[int],
                 scale_in: bool, scale_out: bool, r_init: str = "random-signs",
                 r_chunks: Optional[Sequence[int]] = None) -> None:
        super().__init__(k)
        self.e, self.d_in, self.d_out = e, _sizes(d_in, k), _sizes(d_out, k)
        self.weight = nn.Parameter(torch.zeros(k, max(self.d_in), max(self.d_out)))
        self.bias = nn.Parameter(torch.zeros(k, e, max(self.d_out)))
        self.r = nn.Parameter(torch.ones(k, e, max(self.d_in))) if scale_in else None
        self.s = nn.Parameter(torch.ones(k, e, max(self.d_out))) if scale_out else None
        with torch.no_grad():
            for m, (i, o) in enumerate(zip(self.d_in, self.d_out)):
                bound = 1.0 / math.sqrt(i)
                self.weight[m, :i, :o].uniform_(-bound, bound)
                self.bias[m, :, :o] = torch.empty(o).uniform_(-bound, bound)  # the same for all submodels
                if self.r is not None:
                    self.r[m, :, :i] = random_scaling(e, i, r_init, r_chunks)
                    self.r[m, :, i:] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, e, rows, d = x.shape
        if self.r is not None:
            x = x * self.r.unsqueeze(2)
        out = torch.bmm(x.reshape(k, e * rows, d), self.weight).reshape(k, e, rows, -1)
        if self.s is not None:
            out = out * self.s.unsqueeze(2)
        return out + self.bias.unsqueeze(2)

    def slices(self, m: int) -> dict[str, tuple[slice, ...]]:
        keep, i, o = slice(m, m + 1), self.d_in[m], self.d_out[m]
        out = {"weight": (keep, slice(0, i), slice(0, o)), "bias": (keep, slice(None), slice(0, o))}
        if self.r is not None:
            out["r"] = (keep, slice(None), slice(0, i))
        if self.s is not None:
            out["s"] = (keep, slice(None), slice(0, o))
        return out


class StackedScaling(Stacked):
    """TabM-mini's non-shared part: an elementwise scaling per submodel, x (K, e, rows, d) * r (K, e, d)."""

    def __init__(self, k: int, e: int, d: int, init: str, chunks: Optional[Sequence[int]] = None) -> None:
        super().__init__(k)
        self.r = nn.Parameter(torch.stack([random_scaling(e, d, init, chunks) for _ in range(k)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.r.unsqueeze(2)


class StackedEnsembleHead(Stacked):
    """A separate linear head per submodel (TabM's `LinearEnsemble`): x (K, e, rows, d) -> (K, e, rows, out)."""

    MEMBER_LISTS = ("d_in",)

    def __init__(self, k: int, e: int, d_in: int | Sequence[int], d_out: int) -> None:
        super().__init__(k)
        self.d_in = _sizes(d_in, k)
        self.weight = nn.Parameter(torch.zeros(k, e, max(self.d_in), d_out))
        self.bias = nn.Parameter(torch.zeros(k, e, d_out))
        with torch.no_grad():
            for m, i in enumerate(self.d_in):
                bound = 1.0 / math.sqrt(i)
                self.weight[m, :, :i].uniform_(-bound, bound)
                self.bias[m].uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("kerd,kedo->kero", x, self.weight) + self.bias.unsqueeze(2)

    def slices(self, m: int) -> dict[str, tuple[slice, ...]]:
        keep = slice(m, m + 1)
        return {"weight": (keep, slice(None), slice(0, self.d_in[m])), "bias": (keep,)}


def random_scaling(e: int, d: int, init: str, chunks: Optional[Sequence[int]] = None) -> torch.Tensor:
    """TabM's first scaling: random signs (plain inputs) or N(0, 1) (embedded inputs), one value per chunk of
    dimensions (the dimensions of one feature's embedding share it), as `tabm.init_scaling_`."""
    if init == "ones":
        return torch.ones(e, d)
    chunks = list(chunks) if chunks else [1] * d
    draw = torch.randn(e, len(chunks)) if init == "normal" else torch.bernoulli(torch.full((e, len(chunks)), 0.5)) * 2 - 1
    return torch.repeat_interleave(draw, torch.as_tensor(chunks), dim=1)[:, :d]


def stack_inputs(x_num: torch.Tensor, x_cat: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(K, rows, ...) inputs from a single network's (rows, ...) ones (a stack of one), and whether they were."""
    if x_num.dim() == 2:
        if k != 1:
            raise ValueError(f"a stack of {k} networks takes (members, rows, features) inputs")
        return x_num.unsqueeze(0), x_cat.unsqueeze(0), True
    return x_num, x_cat, False


def fit_inputs(model: nn.Module, m: int, x_num: torch.Tensor) -> None:
    """Fill every data-dependent buffer of member `m` from its training rows' numeric features."""
    for module in model.modules():
        fit = getattr(module, "fit_inputs", None)
        if isinstance(module, Stacked) and callable(fit):
            fit(m, x_num)


def stacked_modules(model: nn.Module) -> Iterable[Stacked]:
    return (m for m in model.modules() if isinstance(m, Stacked))


def members_of(model: nn.Module) -> Optional[int]:
    """K of a stacked model (None for a network of another kind)."""
    return getattr(model, "k", None) if any(True for _ in stacked_modules(model)) else None
