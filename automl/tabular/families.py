"""The host's tabular model families: search spaces (define-by-run), network builders, known-good defaults.

- `mlp` and `tabm` are one stacked network (`automl.tabular.networks.TabularStack`): several trials of one
  structure train as one model (`search.batch`), and so do the fold models of a cross-validated trial. Both
  search the numeric inputs' presentation (standard, quantile-to-normal, robust scaling with smooth clipping)
  and numeric embeddings (none, piecewise-linear, periodic), following the TabM paper's spaces (Gorishniy et
  al., ICLR 2025) and "On Embeddings for Numerical Features" (Gorishniy et al., NeurIPS 2022).
- `dcn` (DCN-v2) and `ft_transformer` train one trial at a time.

Search spaces suggest architecture only; the pipeline adds learning rate, weight decay and batch size. The
host namespaces parameter names by family (`depth` is stored as `mlp.depth`). Each stacked family's
`portfolio` lists its published defaults, which a new study tries first. Nothing here imports torch at module
level: networks are built by functions that import it when a trial runs.
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
    """Shapes of prepared tabular data, all a family needs to size a network.

    `x_num` holds `n_num` columns: the numeric values first, then `n_indicators` missing-value indicators.
    """

    n_num: int = 0
    cardinalities: tuple[int, ...] = ()
    n_outputs: int = 1
    n_classes: int = 0
    n_indicators: int = 0


def max_width(info: TabularInfo) -> int:
    """Widest layer worth searching for this much data: 4 * sqrt(rows), as a power of two in [64, 1024].

    A 512-wide, four-layer network on 3,000 rows costs six times a 128-wide one per step and fits no
    better; on 100,000 rows the wide ones earn their keep.
    """
    return int(min(1024, max(64, 2 ** math.ceil(math.log2(4 * math.sqrt(max(info.n_train, 1)))))))


#: Submodels of a TabM member. The paper's default is 32; 8 keeps a trial's cost within a few MLPs on a CPU
#: (the paper reports most of the gain at k = 8), and it is fixed, not searched.
TABM_SUBMODELS = 8
TRANSFORMS = ("standard", "quantile_normal", "robust_clip")
EMBEDDINGS = ("none", "piecewise_linear", "periodic")


def _backbone_space(trial: "optuna.Trial", info: TabularInfo, min_depth: int = 1) -> dict[str, Any]:
    """Depth, width and dropout of the blocks, the numeric inputs' presentation and their embedding."""
    params: dict[str, Any] = {
        "depth": trial.suggest_int("depth", min_depth, 4),
        "width": trial.suggest_int("width", 16, max_width(info), log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "transform": trial.suggest_categorical("transform", list(TRANSFORMS)),
        "embedding": trial.suggest_categorical("embedding", list(EMBEDDINGS)) if _values(info) else "none",
    }
    if params["embedding"] == "piecewise_linear":
        params["n_bins"] = trial.suggest_int("n_bins", 4, 32, log=True)
    elif params["embedding"] == "periodic":
        params["frequency_scale"] = trial.suggest_float("frequency_scale", 0.01, 1.0, log=True)
    return params


def _values(info: TabularInfo) -> int:
    return info.n_num - info.n_indicators


def mlp_space(trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
    """Depth 0 is a linear model of the presented inputs: logistic regression on standard inputs, an additive
    model of each column's embedding with piecewise-linear or periodic embeddings (on a table of a few
    columns, or a few hundred rows, the model to beat)."""
    return _backbone_space(trial, info, min_depth=0)


def tabm_space(trial: "optuna.Trial", info: TabularInfo) -> dict[str, Any]:
    return {"arch": trial.suggest_categorical("arch", ["batch", "mini"]), **_backbone_space(trial, info)}


def _stack(params: list[dict[str, Any]], info: TabularInfo, ensemble: int, arch: str) -> "nn.Module":
    from automl.tabular.networks import TabularStack

    return TabularStack(params, info.n_num, info.n_indicators, tuple(info.cardinalities), info.n_outputs, info.task,
                        ensemble=ensemble, arch=arch)


def mlp_stack(params: list[dict[str, Any]], info: TabularInfo) -> "nn.Module":
    return _stack(params, info, 1, "plain")


def mlp_network(params: dict[str, Any], info: TabularInfo) -> "nn.Module":
    return mlp_stack([params], info)


def tabm_stack(params: list[dict[str, Any]], info: TabularInfo) -> "nn.Module":
    return _stack(params, info, TABM_SUBMODELS, params[0]["arch"])


def tabm_network(params: dict[str, Any], info: TabularInfo) -> "nn.Module":
    return tabm_stack([params], info)


def backbone_key(params: dict[str, Any]) -> tuple:
    """Configurations with the same depth and numeric embedding share a stack (widths are padded). A round of
    trials shares depth, width, embedding and its bins (`round_shares`), so its members stack unpadded."""
    return (params["depth"], params["embedding"], params.get("arch"))


def mlp_portfolio(info: TabularInfo) -> list[dict[str, Any]]:
    """The MLP baselines of the TabM paper's appendix: a plain one, and one with piecewise-linear embeddings
    (its strongest simple model), at the width this much data warrants."""
    width = min(256, max_width(info))
    plain = {"mlp.depth": 3, "mlp.width": width, "mlp.dropout": 0.1, "mlp.transform": "quantile_normal",
             "mlp.embedding": "none", "lr": 1e-3, "weight_decay": 1e-4}
    embedded = {**plain, "mlp.depth": 2, "mlp.embedding": "piecewise_linear", "mlp.n_bins": 16}
    # an additive model over piecewise-linear embeddings: what a scorecard is, learned
    additive = {**plain, "mlp.depth": 0, "mlp.embedding": "piecewise_linear", "mlp.n_bins": 8, "lr": 3e-3}
    # logistic (or linear) regression on standardised inputs: on small or near-linear data the model to beat
    linear = {**plain, "mlp.depth": 0, "mlp.transform": "standard", "lr": 1e-2, "weight_decay": 1e-3}
    return [plain, embedded, additive, linear] if _values(info) else [plain, linear]


def tabm_portfolio(info: TabularInfo) -> list[dict[str, Any]]:
    """TabM's published defaults (`tabm.TabM.make`: 3 blocks, dropout 0.1, AdamW lr 2e-3, weight decay 3e-4)
    and TabM-mini with piecewise-linear embeddings (the paper's best variant, 2 blocks), at the width this much
    data warrants (the paper's 512 where there is data for it)."""
    width = min(512, max_width(info))
    base = {"tabm.arch": "batch", "tabm.depth": 3, "tabm.width": width, "tabm.dropout": 0.1,
            "tabm.transform": "quantile_normal", "tabm.embedding": "none", "lr": 2e-3, "weight_decay": 3e-4}
    mini = {**base, "tabm.arch": "mini", "tabm.depth": 2, "tabm.embedding": "piecewise_linear", "tabm.n_bins": 16}
    return [base, mini] if _values(info) else [base]


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
    stack=mlp_stack,
    stack_key=backbone_key,
    round_shares=("depth", "width", "embedding", "n_bins"),
    portfolio=mlp_portfolio,
    description="multi-layer perceptron: depth, width, dropout, numeric transform (standard / quantile-to-normal "
                "/ robust clipping), numeric embeddings (piecewise-linear / periodic)",
)
TABM = ModelFamily(
    name="tabm",
    tasks=TABULAR_TASKS,
    search_space=tabm_space,
    network=tabm_network,
    stack=tabm_stack,
    stack_key=backbone_key,
    round_shares=("arch", "depth", "width", "embedding", "n_bins"),
    portfolio=tabm_portfolio,
    description=f"TabM (ICLR 2025): {TABM_SUBMODELS} weight-sharing MLPs (BatchEnsemble or TabM-mini) trained on "
                "the mean of their losses; depth, width, dropout, numeric transform and embeddings",
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

FAMILIES = [MLP, TABM, FT_TRANSFORMER, DCN]
