"""The `text_fusion` model family: its data info, search space, known-good defaults and network builder.

Nothing here imports torch: the builtin plugin registers the family when `automl plugins` lists plugins, and
the network (`automl.text.networks.TextFusion`) is imported only when a trial builds one.

The space (namespaced by the host: `text_fusion.adapt`, ...): how much of the encoder to adapt (frozen, its
top n layers), the encoder's learning rate as a fraction of the head's (`encoder_lr_scale`; adapted trials
only), pooling (mean, cls), maximum token length, the width of each text column's projection, and the
tabular network beside it (depth, width, dropout). The host adds the learning rate and weight decay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automl.specs import ModelFamily
from automl.tabular.families import TabularInfo, max_width
from automl.tasks import TABULAR_TASKS

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from torch import nn

    from automl.pipeline import DataInfo

NAME = "text_fusion"


@dataclass(frozen=True)
class TextInfo(TabularInfo):
    """Tabular shapes plus the text columns and the encoder that reads them (saved in predictor.json).

    `text_encoder` is the encoder folder (inside a saved predictor: its `text_encoder/` folder); `text_lengths`,
    `text_adapt` and `text_pooling` are the searched choices, as the data and `text:` allow them.
    """

    text_columns: tuple[str, ...] = ()
    text_encoder: str = ""
    text_name: str = ""
    text_dim: int = 0
    text_layers: int = 0
    text_lengths: tuple[int, ...] = ()
    text_adapt: tuple[str, ...] = ("frozen",)
    text_pooling: tuple[str, ...] = ("mean",)

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> "TextInfo":
        """From predictor.json's `info` (JSON lists back to tuples)."""
        out = dict(fields)
        for key in ("cardinalities", "text_columns", "text_lengths", "text_adapt", "text_pooling"):
            if key in out:
                out[key] = tuple(out[key])
        return cls(**out)


def has_text(info: "DataInfo") -> bool:
    """The family reads text: it leaves studies of data without text columns."""
    return isinstance(info, TextInfo) and bool(info.text_columns)


def text_fusion_space(trial: "optuna.Trial", info: TextInfo) -> dict[str, Any]:
    adapt = trial.suggest_categorical("adapt", list(info.text_adapt))
    params: dict[str, Any] = {
        "adapt": adapt,
        "pooling": trial.suggest_categorical("pooling", list(info.text_pooling)),
        "max_len": trial.suggest_categorical("max_len", list(info.text_lengths)),
        "text_width": trial.suggest_int("text_width", 16, 256, log=True),
        "depth": trial.suggest_int("depth", 1, 3),
        "width": trial.suggest_int("width", 32, max(32, max_width(info)), log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }
    if adapt != "frozen":
        # fine-tuning moves pre-trained weights 10 to 100 times more gently than a fresh head (Howard & Ruder,
        # ULMFiT, 2018; BERT's own fine-tuning rates are 2e-5 to 5e-5)
        params["encoder_lr_scale"] = trial.suggest_float("encoder_lr_scale", 0.003, 0.3, log=True)
    return params


def text_fusion_portfolio(info: TextInfo) -> list[dict[str, Any]]:
    """A frozen encoder with mean pooling (how all-MiniLM-L6-v2 was trained to be read) at the longest length,
    beside a two-layer tabular network."""
    width = min(256, max(32, max_width(info)))
    adapt = "frozen" if "frozen" in info.text_adapt else info.text_adapt[0]
    base = {"text_fusion.adapt": adapt, "text_fusion.pooling": "mean" if "mean" in info.text_pooling else
            info.text_pooling[0], "text_fusion.max_len": max(info.text_lengths), "text_fusion.text_width": 64,
            "text_fusion.depth": 2, "text_fusion.width": width, "text_fusion.dropout": 0.1,
            "lr": 1e-3, "weight_decay": 1e-4}
    if adapt != "frozen":  # a study that only fine-tunes (text.adapt=[top1]): BERT's usual rate for the encoder
        base["text_fusion.encoder_lr_scale"] = 0.03
    return [base]


def text_fusion_network(params: dict[str, Any], info: TextInfo) -> "nn.Module":
    from automl.text.networks import TextFusion

    return TextFusion(params, info)


TEXT_FUSION = ModelFamily(
    name=NAME,
    tasks=TABULAR_TASKS,
    search_space=text_fusion_space,
    network=text_fusion_network,
    accepts=has_text,
    portfolio=text_fusion_portfolio,
    description="a pre-trained text encoder's pooled output per text column joined with a tabular MLP, trained end "
                "to end: frozen or top-n layers adapted, encoder learning rate, pooling, token length, widths",
)
