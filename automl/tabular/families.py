"""The host's tabular model families: search spaces (define-by-run) and network builders.

Search spaces suggest architecture only; the pipeline adds learning rate, weight decay and batch size. The
host namespaces parameter names by family (`depth` is stored as `mlp.depth`). Nothing here imports torch
at module level: networks are built by functions that import it when a trial runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automl.pipeline import DataInfo
from automl.specs import ModelFamily
from automl.tasks import TABULAR_TASKS

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from torch import nn


@dataclass(frozen=True)
class TabularInfo(DataInfo):
    """Shapes of prepared tabular data, all a family needs to size a network."""

    n_num: int = 0
    cardinalities: tuple[int, ...] = ()
    n_outputs: int = 1
    n_classes: int = 0


def max_width(info: TabularInfo) -> int:
    """Widest layer worth searching for this much data: 4 * sqrt(rows), as a power of two in [64, 1024].

    A 512-wide, four-layer network on 3,000 rows costs six times a 128-wide one per step and fits no
    better; on 100,000 rows the wide ones earn their keep.
    """
    return int(min(1024, max(64, 2 ** math.ceil(math.log2(4 * math.sqrt(max(info.n_train, 1)))))))


def mlp_space(trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
    depth = trial.suggest_int("depth", 1, 4)
    widest = max_width(info)
    return {
        "widths": [trial.suggest_int(f"width_{i}", 16, widest, log=True) for i in range(depth)],
        "activation": trial.suggest_categorical("activation", ["relu", "gelu", "silu"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "norm": trial.suggest_categorical("norm", ["none", "batch", "layer"]),
        "residual": trial.suggest_categorical("residual", [False, True]),
    }


def mlp_network(params: dict[str, Any], info: TabularInfo) -> "nn.Module":
    from automl.tabular.networks import MLPNet

    return MLPNet(info.n_num, tuple(info.cardinalities), info.n_outputs, list(params["widths"]),
                  params["activation"], params["dropout"], params["norm"], params["residual"])


def ft_transformer_space(trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
    n_heads = trial.suggest_categorical("n_heads", [1, 2, 4])
    head_dim = trial.suggest_categorical("head_dim", [8, 16, 32])
    return {
        "d_token": n_heads * head_dim,
        "n_heads": n_heads,
        "n_blocks": trial.suggest_int("n_blocks", 1, 3),
        "ffn_factor": trial.suggest_float("ffn_factor", 0.67, 2.67),
        "attention_dropout": trial.suggest_float("attention_dropout", 0.0, 0.3),
        "ffn_dropout": trial.suggest_float("ffn_dropout", 0.0, 0.3),
    }


def ft_transformer_network(params: dict[str, Any], info: TabularInfo) -> "nn.Module":
    from automl.tabular.networks import FTTransformer

    return FTTransformer(info.n_num, tuple(info.cardinalities), info.n_outputs, **params)


#: Attention is quadratic in the number of tokens (one per feature): beyond this, the MLP family is the tool.
FT_MAX_FEATURES = 64


def ft_transformer_accepts(info: TabularInfo) -> bool:
    return info.n_num + len(info.cardinalities) <= FT_MAX_FEATURES


def dcn_space(trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
    depth = trial.suggest_int("deep_depth", 0, 3)
    widest = max_width(info)
    return {
        "n_cross": trial.suggest_int("n_cross", 1, 4),
        "deep_widths": [trial.suggest_int(f"deep_width_{i}", 16, widest, log=True) for i in range(depth)],
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def dcn_network(params: dict[str, Any], info: TabularInfo) -> "nn.Module":
    from automl.tabular.networks import DCNv2

    return DCNv2(info.n_num, tuple(info.cardinalities), info.n_outputs, params["n_cross"],
                 list(params["deep_widths"]), params["dropout"])


MLP = ModelFamily(
    name="mlp",
    tasks=TABULAR_TASKS,
    search_space=mlp_space,
    network=mlp_network,
    description="multi-layer perceptron: depth, width per layer, activation, dropout, normalisation, residuals",
)
FT_TRANSFORMER = ModelFamily(
    name="ft_transformer",
    tasks=TABULAR_TASKS,
    search_space=ft_transformer_space,
    network=ft_transformer_network,
    accepts=ft_transformer_accepts,
    description="feature-token transformer: heads, head size, blocks, feed-forward size, dropouts",
)
DCN = ModelFamily(
    name="dcn",
    tasks=TABULAR_TASKS,
    search_space=dcn_space,
    network=dcn_network,
    description="deep & cross network v2: cross layers beside a searched deep tower",
)

FAMILIES = [MLP, FT_TRANSFORMER, DCN]
