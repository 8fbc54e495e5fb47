"""The recommender families: define-by-run search spaces and network builders (torch imported lazily).

Ranges are narrow on purpose: a short study (six trials, the first five sampled at random) should find a
good model, so every corner of a space is one that trains well on a CPU within a trial's budget. Each
family also searches its own negative sampling, since "negatives" means different things to each loss.
The factorisation families may add a user's latest items to the user's factor (`history`, SVD++ style):
under leave-last-out the held-out item follows those items, and on movielens this doubles NDCG@10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.api import DataInfo, ModelFamily

from automl_recommendation.options import EXPLICIT, IMPLICIT, RecInfo

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from torch import nn

#: Latest items whose factors join a user's factor in MF and NeuMF (SVD++ style); 0 is plain factorisation.
#: Rating prediction (explicit, random split) never uses them: a user's later items may be test rows.
HISTORY_LENGTHS = (0, 5, 10, 20)
#: Searched sequence lengths of the sequential model, before the data's cap (`RecInfo.max_seq_len`).
SEQUENCE_LENGTHS = (25, 50, 100)


def is_interaction_data(info: DataInfo) -> bool:
    """The families only fit interaction data: they leave a tabular study asking for them."""
    return isinstance(info, RecInfo)


def _content(trial: "optuna.Trial", info: RecInfo) -> dict[str, Any]:
    """With item text (`domain.options.item_text`): none, its projection added to each item's factor, or added
    with the learned factor dropped out in training (`networks.ContentTower`)."""
    return {"content": trial.suggest_categorical("content", ["none", "add", "dropout"])} if info.text_dim else {}


def _content_args(params: dict[str, Any], info: RecInfo) -> dict[str, Any]:
    """The networks' `text_dim` and `id_dropout` for a trial's `content` choice."""
    from automl_recommendation.networks import CONTENT

    rate = CONTENT[params.get("content", "none")]
    return {"text_dim": info.text_dim, "id_dropout": rate} if rate is not None and info.text_dim else {}


def mf_bpr_space(trial: "optuna.Trial", info: RecInfo) -> dict[str, Any]:
    return {
        "dim": trial.suggest_categorical("dim", [64, 128]),
        "negatives": trial.suggest_categorical("negatives", [4, 16]),
        "history": trial.suggest_categorical("history", list(HISTORY_LENGTHS)),
        **_content(trial, info),
    }


def mf_bpr_network(params: dict[str, Any], info: RecInfo) -> "nn.Module":
    from automl_recommendation.networks import MFBPR

    return MFBPR(info.n_users, info.n_items, int(params["dim"]), int(params["negatives"]),
                 int(params.get("history", 0)), **_content_args(params, info))


def neumf_space(trial: "optuna.Trial", info: RecInfo) -> dict[str, Any]:
    mlp_dim = trial.suggest_categorical("mlp_dim", [16, 32])
    depth = trial.suggest_int("depth", 1, 2)
    params = {
        "gmf_dim": trial.suggest_categorical("gmf_dim", [32, 64, 128]),
        "mlp_dim": mlp_dim,
        # a pyramid that halves at each layer (He et al.), from the embedding size: scoring every item for
        # every user runs the tower on each pair, so it stays narrow
        "tower": [max(8, mlp_dim // 2 ** i) for i in range(depth)],
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
    }
    if info.task == IMPLICIT:
        params["negatives"] = trial.suggest_categorical("negatives", [4, 16])
        params["history"] = trial.suggest_categorical("history", list(HISTORY_LENGTHS))
    params.update(_content(trial, info))
    return params


def neumf_network(params: dict[str, Any], info: RecInfo) -> "nn.Module":
    from automl_recommendation.networks import NeuMF

    return NeuMF(info.n_users, info.n_items, int(params["gmf_dim"]), int(params["mlp_dim"]),
                 [int(w) for w in params["tower"]], float(params["dropout"]), int(params.get("negatives", 0)),
                 rating_mean=info.rating_mean if info.task == EXPLICIT else None,
                 history=int(params.get("history", 0)), **_content_args(params, info))


def sasrec_space(trial: "optuna.Trial", info: RecInfo) -> dict[str, Any]:
    lengths = [n for n in SEQUENCE_LENGTHS if n <= info.max_seq_len] or [info.max_seq_len]
    return {
        "hidden": trial.suggest_categorical("hidden", [32, 64]),
        "layers": trial.suggest_int("layers", 1, 2),
        "heads": trial.suggest_categorical("heads", [1, 2]),
        "max_len": trial.suggest_categorical("max_len", lengths),
        "dropout": trial.suggest_float("dropout", 0.1, 0.4),
        "negatives": trial.suggest_categorical("negatives", [1024, 2048]),
    }


def sasrec_network(params: dict[str, Any], info: RecInfo) -> "nn.Module":
    from automl_recommendation.networks import SASRec

    return SASRec.from_params(params, info.n_items)


MF_BPR = ModelFamily(
    name="mf_bpr",
    tasks={IMPLICIT},
    search_space=mf_bpr_space,
    network=mf_bpr_network,
    accepts=is_interaction_data,
    description="matrix factorisation with item biases, BPR pairwise loss: embedding size, negatives per positive; "
                "with item text, a content tower (none / add / dropout)",
)
NEUMF = ModelFamily(
    name="neumf",
    tasks={IMPLICIT, EXPLICIT},
    search_space=neumf_space,
    network=neumf_network,
    accepts=is_interaction_data,
    description="NeuMF: GMF beside an MLP tower (sizes, depth, dropout); ranks (implicit) or rates (explicit); "
                "with item text, a content tower (none / add / dropout)",
)
SASREC = ModelFamily(
    name="sasrec",
    tasks={IMPLICIT},
    search_space=sasrec_space,
    network=sasrec_network,
    accepts=is_interaction_data,
    description="SASRec: causal transformer (transformers BertModel) over each user's recent items: layers, "
                "heads, hidden size, sequence length, dropout, sampled-softmax negatives",
)

FAMILIES = [MF_BPR, NEUMF, SASREC]
