"""Model families for small and wide clinical tables, searched in the same study as the host's `mlp` and `dcn`.

Search spaces suggest architecture only (the pipeline adds learning rate, weight decay and batch size); the
host prefixes every name with the family's (`snn.depth`). torch is imported only when a network is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.api import CLASSIFICATION, ModelFamily, max_width

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from torch import nn

    from automl.api import TabularInfo


def snn_space(trial: "optuna.Trial", info: "TabularInfo") -> dict[str, Any]:
    depth = trial.suggest_int("depth", 1, 4)
    width = trial.suggest_int("width", 16, max_width(info), log=True)  # one width: the SNN paper's design
    return {
        "widths": [width] * depth,
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "input_dropout": trial.suggest_float("input_dropout", 0.0, 0.3),
    }


def snn_network(params: dict[str, Any], info: "TabularInfo") -> "nn.Module":
    from automl_medical.networks import SelfNormalizingNet

    return SelfNormalizingNet(info.n_num, tuple(info.cardinalities), info.n_outputs, list(params["widths"]),
                              params["dropout"], params["input_dropout"])


def gated_mlp_space(trial: "optuna.Trial", info: "TabularInfo") -> dict[str, Any]:
    depth = trial.suggest_int("depth", 1, 3)
    widest = max_width(info)
    return {
        "widths": [trial.suggest_int(f"width_{i}", 16, widest, log=True) for i in range(depth)],
        "activation": trial.suggest_categorical("activation", ["relu", "gelu", "silu"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "input_dropout": trial.suggest_float("input_dropout", 0.0, 0.6),
        "gate_penalty": trial.suggest_float("gate_penalty", 1e-3, 0.1, log=True),
    }


def gated_mlp_network(params: dict[str, Any], info: "TabularInfo") -> "nn.Module":
    from automl_medical.networks import GatedMLP

    return GatedMLP(info.n_num, tuple(info.cardinalities), info.n_outputs, list(params["widths"]),
                    params["activation"], params["dropout"], params["input_dropout"], params["gate_penalty"])


SNN = ModelFamily(
    name="snn",
    tasks=CLASSIFICATION,
    search_space=snn_space,
    network=snn_network,
    description="self-normalising network: SELU, LeCun-normal init, alpha dropout on inputs and hidden units",
)
GATED_MLP = ModelFamily(
    name="gated_mlp",
    tasks=CLASSIFICATION,
    search_space=gated_mlp_space,
    network=gated_mlp_network,
    description="MLP behind learned stochastic feature gates (sparsity-penalised) and strong input dropout",
)

FAMILIES = [SNN, GATED_MLP]
