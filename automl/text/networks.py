"""The fusion network of the `text_fusion` family, and the average of several models when some read text.

`TextFusion(x_num, x_cat, text)`: each text column's pooled encoder output goes through a LayerNorm and a
projection; the tabular features go through an MLP (numeric values as they are, categories through
embeddings, `automl.tabular.networks.FeatureInput`); the two are joined and a fusion layer and head give the
logits, as in AutoGluon's multimodal late fusion (Shi et al., "Benchmarking Multimodal AutoML for Tabular Data
with Text Fields", NeurIPS 2021 Datasets and Benchmarks). Trained end to end: with `adapt` = topN, the top N
encoder layers train with the head.

The encoder's own weights are never changed and never saved with a model: every model of a process shares
the loaded encoder (`automl.text.encoder.load_encoder`). An adapted layer's weight is W0 + s * D, with W0 the
pre-trained weight, D a trained parameter of this model (zero at the start) and s = `encoder_lr_scale`: under
Adam the step on W is s times the step on D (Adam's step does not depend on the gradient's scale), so the
encoder trains at s times the head's learning rate through the host's one optimiser, and weight decay pulls W
toward the pre-trained W0 rather than toward zero (L2-SP, Li et al., ICML 2018). A model's state_dict holds
the head and D only: a frozen trial's weights are kilobytes, an adapted one's a few layers.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from automl.errors import AutoMLError
from automl.tabular.averaging import WeightedAverage
from automl.tabular.networks import FeatureInput
from automl.text.cache import TextRequest, adapt_depth
from automl.text.encoder import Encoder, load_encoder


def uses_text(model: Any) -> bool:
    return bool(getattr(model, "uses_text", False))


class TextFusion(nn.Module):
    """Text columns through a pre-trained encoder (frozen or partly adapted), joined with a tabular MLP."""

    uses_text = True

    def __init__(self, params: dict[str, Any], info: Any) -> None:
        super().__init__()
        encoder = load_encoder(info.text_encoder)
        self._encoder = [encoder]  # a list: shared by every model of the process, not a submodule of this one
        k = adapt_depth(str(params["adapt"]))
        self.request = TextRequest(int(params["max_len"]), str(params["pooling"]), k)
        self.scale = float(params.get("encoder_lr_scale", 1.0))
        self._names = {name: name.replace(".", "__") for name in encoder.layer_parameters(k)} if k else {}
        self.deltas = nn.ParameterDict({safe: nn.Parameter(torch.zeros_like(p))
                                        for (name, safe), p in zip(self._names.items(),
                                                                   encoder.layer_parameters(k).values())})
        width, dropout = int(params["width"]), float(params["dropout"])
        self.input = FeatureInput(info.n_num, tuple(info.cardinalities))
        tab: list[nn.Module] = []
        d = self.input.out_features
        if d:
            for _ in range(int(params["depth"])):
                tab += [nn.Linear(d, width), nn.ReLU(), nn.Dropout(dropout)]
                d = width
        self.tab = nn.Sequential(*tab)
        text_width = int(params["text_width"])
        self.text = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(encoder.dim), nn.Dropout(dropout), nn.Linear(encoder.dim, text_width), nn.ReLU())
            for _ in info.text_columns)
        joined = (d if self.input.out_features else 0) + text_width * len(info.text_columns)
        self.fuse = nn.Sequential(nn.Linear(joined, width), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(width, info.n_outputs))

    @property
    def encoder(self) -> Encoder:
        return self._encoder[0]

    def adapted(self) -> Optional[dict[str, torch.Tensor]]:
        """The adapted layers' weights W0 + s * D, by the encoder's parameter names (None when frozen)."""
        if not self._names:
            return None
        base = self.encoder.layer_parameters(self.request.adapt)
        return {name: base[name] + self.scale * self.deltas[safe] for name, safe in self._names.items()}

    def encode(self, text: Any) -> torch.Tensor:
        """Each text column's pooled encoder output, (rows, columns, dim)."""
        batch = text.get(self.request)
        if batch.pooled is not None:
            return batch.pooled.float()
        enc = self.encoder
        source = batch.hidden if batch.hidden is not None else batch.ids
        enc.to(source.device)
        rows, cols = source.shape[:2]
        weights = self.adapted()
        if batch.hidden is not None:  # token states entering layer `first`, cached
            mask = batch.mask.flatten(0, 1)
            states = enc.run_layers(batch.hidden.flatten(0, 1).to(self._dtype(enc)), mask, batch.first, weights)
        else:  # raw tokens: the whole encoder, its frozen part without gradients
            ids, lengths = batch.ids.flatten(0, 1), batch.lengths.flatten(0, 1)
            mask = torch.arange(ids.shape[1], device=ids.device) < lengths.unsqueeze(1)
            if weights is None:
                with torch.no_grad():
                    states = enc.hidden_states(ids, lengths)
            else:
                states = enc.hidden_states(ids, lengths, weights)
        return enc.pool(states, mask, self.request.pooling).float().view(rows, cols, -1)

    @staticmethod
    def _dtype(enc: Encoder) -> torch.dtype:
        return next(enc.model.parameters()).dtype

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor, text: Any = None) -> torch.Tensor:
        if text is None:
            raise AutoMLError("this model reads text columns: score raw rows through the predictor "
                              "(predict / predict_proba), which passes their text to it")
        pooled = self.encode(text)
        parts = [proj(pooled[:, j]) for j, proj in enumerate(self.text)]
        if self.input.out_features:
            parts.insert(0, self.tab(self.input(x_num, x_cat)))
        return self.fuse(torch.cat(parts, dim=1))


class TextAverage(WeightedAverage):
    """`WeightedAverage` whose members may read text: each gets the text in the form it asks for."""

    uses_text = True

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor, text: Any = None) -> torch.Tensor:
        outs = torch.stack([(m(x_num, x_cat, text) if uses_text(m) else m(x_num, x_cat)).float()
                            for m in self.members])
        w = self.weights.to(outs.device)
        if self.task == "binary":
            return torch.logit((outs.sigmoid() * w).sum(0), eps=1e-7)
        if self.task == "multiclass":
            return (outs.softmax(-1) * w).sum(0).clamp_min(1e-12).log()
        return (outs * w).sum(0)
