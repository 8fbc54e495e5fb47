"""The host's tabular model families: search spaces (define-by-run) and network builders.

Search spaces suggest architecture only; the pipeline adds learning rate, weight decay and batch size. The
host namespaces parameter names by family (`depth` is stored as `mlp.depth`). Nothing here imports torch
at module level: networks are built by functions that import it when a trial runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automl.specs import TABULAR_TASKS, DataInfo, ModelFamily

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


def mlp_space(trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
    depth = trial.suggest_int("depth", 1, 4)
    return {
        "widths": [trial.suggest_int(f"width_{i}", 16, 512, log=True) for i in range(depth)],
        "activation": trial.suggest_categorical("activation", ["relu", "gelu", "silu"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "norm": trial.suggest_categorical("norm", ["none", "batch", "layer"]),
        "residual": trial.suggest_categorical("residual", [False, True]),
    }


def mlp_network(params: dict[str, Any], info: TabularInfo) -> "nn.Module":
    from automl.tabular.networks import MLPNet

    return MLPNet(info.n_num, tuple(info.cardinalities), info.n_outputs, list(params["widths"]),
                  params["activation"], params["dropout"], params["norm"], params["residual"])


MLP = ModelFamily(
    name="mlp",
    tasks=TABULAR_TASKS,
    search_space=mlp_space,
    network=mlp_network,
    description="multi-layer perceptron: depth, width per layer, activation, dropout, normalisation, residuals",
)

FAMILIES = [MLP]
