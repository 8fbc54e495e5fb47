"""The recommender networks. Imported only where trials run or a predictor loads (torch, transformers).

Every network answers the same questions, so the pipeline needs no per-family code:
- `full_scores(users, tokens)`: a score for every item, for each user;
- `pair_scores(users, items, tokens)`: scores (or ratings) of given user-item pairs;
- `loss(batch)`: the training loss of one batch built by `automl_recommendation.sampling`.
`tokens` are each user's most recent items before the row being scored, left-padded (item index + 1, 0
pads); `history_length` says how many a network reads (0: none, then `tokens` is None). `trains_on_windows`
asks for next-item windows (SASRec) instead of (user, positive, negatives) pairs, and `negatives` says how
many items to sample per positive (per batch, for SASRec).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

#: Elements per chunk when NeuMF scores every item for many users at once (bounds memory, ~64 MB).
_CHUNK_ELEMENTS = 1 << 24


class RecentItems(nn.Module):
    """The implicit-feedback term of SVD++ (Koren 2008) over a user's latest items: sum(y_j) / sqrt(n).

    Added to a user's factor, it lets a factorisation model see what the user did last, which is what a
    leave-last-out evaluation asks about (on movielens it doubles NDCG@10 of plain MF).
    """

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        count = (tokens != 0).sum(1, keepdim=True).clamp(min=1)
        return self.embedding(tokens).sum(1) / count.sqrt()


class ContentTower(nn.Module):
    """Items' text (a frozen pre-trained encoder's embedding of title and genres) projected into factor spaces.

    Added to an item's learned factor(s), it gives an item with few interactions a factor from what it is
    about rather than from its near-random initial values, so it still ranks (the content half of hybrid
    recommenders). With `id_dropout`, training hides an item's learned factor from the sum at that rate, so the
    projection must score items from their text alone, as it will for a cold item: the input dropout of
    Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems", NeurIPS 2017. The
    embeddings are a buffer (saved with the model: numbers, not the text); the LayerNorm and projection train.
    """

    def __init__(self, n_items: int, text_dim: int, dims: tuple[int, ...], id_dropout: float = 0.0) -> None:
        super().__init__()
        self.dims, self.id_dropout = tuple(dims), float(id_dropout)
        self.register_buffer("item_text", torch.zeros(n_items, text_dim))
        self.norm = nn.LayerNorm(text_dim)
        self.proj = nn.Linear(text_dim, sum(self.dims))
        nn.init.normal_(self.proj.weight, std=0.01)
        nn.init.zeros_(self.proj.bias)

    def forward(self, items: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, ...]:
        """Each factor space's content vector of `items` (every item when None)."""
        text = self.item_text if items is None else self.item_text[items]
        return torch.split(self.proj(self.norm(text)), self.dims, dim=-1)

    def combine(self, factors: tuple[torch.Tensor, ...], items: Optional[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """`factors` (learned, one per factor space) plus the content vectors; in training, with `id_dropout`,
        a random share of the items keep their content vectors only."""
        content = self(items)
        if self.training and self.id_dropout and items is not None:
            keep = (torch.rand(items.shape, device=items.device) >= self.id_dropout).unsqueeze(-1)
            factors = tuple(f * keep.to(f.dtype) for f in factors)
        return tuple(f + c for f, c in zip(factors, content))


#: `content` choices of the factorisation families: how an item's text joins its learned factor.
CONTENT = {"none": None, "add": 0.0, "dropout": 0.5}  # dropout: DropoutNet's rate for item preferences


def _expand(users_vec: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """A user vector per row, broadcast over the items of that row when items are [rows, n]."""
    return users_vec.unsqueeze(1) if items.dim() == 2 else users_vec


class MFBPR(nn.Module):
    """Matrix factorisation with item biases, trained with the BPR pairwise loss (Rendle et al. 2009).

    With `history` > 0 the user factor also sums the factors of the user's `history` latest items (SVD++).
    """

    trains_on_windows = False

    def __init__(self, n_users: int, n_items: int, dim: int, negatives: int, history: int = 0,
                 text_dim: int = 0, id_dropout: float = 0.0) -> None:
        super().__init__()
        self.negatives, self.history_length = negatives, history
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)
        self.recent = RecentItems(n_items, dim) if history else None
        self.content = ContentTower(n_items, text_dim, (dim,), id_dropout) if text_dim else None

    def items(self, items: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Item factors (every item's when `items` is None), with the content tower's part when there is one."""
        factor = self.item.weight if items is None else self.item(items)
        return self.content.combine((factor,), items)[0] if self.content is not None else factor

    def user_factor(self, users: torch.Tensor, tokens: Optional[torch.Tensor]) -> torch.Tensor:
        factor = self.user(users)
        return factor + self.recent(tokens) if self.recent is not None else factor

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor,
                    tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        u = _expand(self.user_factor(users, tokens), items)
        return (u * self.items(items)).sum(-1) + self.item_bias(items).squeeze(-1)

    def full_scores(self, users: torch.Tensor, tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.user_factor(users, tokens) @ self.items().T + self.item_bias.weight.T

    def loss(self, batch: tuple[Any, ...]) -> torch.Tensor:
        users, pos, neg, tokens = batch
        u = self.user_factor(users, tokens)
        pos_s = (u * self.items(pos)).sum(-1) + self.item_bias(pos).squeeze(-1)
        neg_s = (u.unsqueeze(1) * self.items(neg)).sum(-1) + self.item_bias(neg).squeeze(-1)
        return -F.logsigmoid(pos_s.unsqueeze(1) - neg_s).mean()


class NeuMF(nn.Module):
    """Neural matrix factorisation (He et al. 2017): a GMF branch beside an MLP tower, fused by one linear layer.

    Implicit task: binary cross-entropy on positives and sampled negatives. Explicit task (`rating_mean`
    given): the output is a rating, mean + user bias + item bias + the fused score, trained by squared error.
    With `history` > 0 both user embeddings also sum the user's latest items (SVD++). The tower's first
    layer is split into a user half and an item half, so scoring every item for a user adds two
    precomputed projections instead of running the layer on every concatenated pair.
    """

    trains_on_windows = False

    def __init__(self, n_users: int, n_items: int, gmf_dim: int, mlp_dim: int, tower: list[int], dropout: float,
                 negatives: int, rating_mean: Optional[float] = None, history: int = 0, text_dim: int = 0,
                 id_dropout: float = 0.0) -> None:
        super().__init__()
        self.negatives, self.history_length = negatives, history
        self.gmf_user, self.gmf_item = nn.Embedding(n_users, gmf_dim), nn.Embedding(n_items, gmf_dim)
        self.mlp_user, self.mlp_item = nn.Embedding(n_users, mlp_dim), nn.Embedding(n_items, mlp_dim)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=0.1)
        self.gmf_recent = RecentItems(n_items, gmf_dim) if history else None
        self.mlp_recent = RecentItems(n_items, mlp_dim) if history else None
        self.content = ContentTower(n_items, text_dim, (gmf_dim, mlp_dim), id_dropout) if text_dim else None
        self.first_user = nn.Linear(mlp_dim, tower[0])
        self.first_item = nn.Linear(mlp_dim, tower[0], bias=False)
        layers: list[nn.Module] = []
        for a, b in zip(tower[:-1], tower[1:]):
            layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(a, b)]
        self.tower = nn.Sequential(*layers, nn.ReLU(), nn.Dropout(dropout))
        self.out = nn.Linear(gmf_dim + tower[-1], 1)
        self.explicit = rating_mean is not None
        if self.explicit:
            self.user_bias, self.item_bias = nn.Embedding(n_users, 1), nn.Embedding(n_items, 1)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
            self.register_buffer("mean", torch.tensor(float(rating_mean)))

    def _items(self, items: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(GMF item vectors, MLP item embeddings) of `items` (every item when None), with content when present."""
        gmf = self.gmf_item.weight if items is None else self.gmf_item(items)
        mlp = self.mlp_item.weight if items is None else self.mlp_item(items)
        if self.content is not None:
            gmf, mlp = self.content.combine((gmf, mlp), items)
        return gmf, mlp

    def _users(self, users: torch.Tensor, tokens: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(GMF user vector, user half of the tower's first layer)."""
        gmf, mlp = self.gmf_user(users), self.mlp_user(users)
        if self.gmf_recent is not None:
            gmf, mlp = gmf + self.gmf_recent(tokens), mlp + self.mlp_recent(tokens)
        return gmf, self.first_user(mlp)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor,
                    tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        gmf_u, first_u = self._users(users, tokens)
        gmf_i, mlp_i = self._items(items)
        gmf = _expand(gmf_u, items) * gmf_i
        hidden = self.tower(_expand(first_u, items) + self.first_item(mlp_i))
        score = self.out(torch.cat([gmf, hidden], -1)).squeeze(-1)
        if self.explicit:
            score = score + self.mean + _expand(self.user_bias(users).squeeze(-1), items) \
                + self.item_bias(items).squeeze(-1)
        return score

    def full_scores(self, users: torch.Tensor, tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
        n_items, g = self.gmf_item.num_embeddings, self.gmf_item.embedding_dim
        w_gmf, w_mlp = self.out.weight[0, :g], self.out.weight[0, g:]
        gmf_items, mlp_items = self._items()
        items_first = self.first_item(mlp_items)  # (n_items, width)
        step = max(1, _CHUNK_ELEMENTS // (n_items * items_first.shape[1]))
        outs = []
        for start in range(0, len(users), step):
            u = users[start:start + step]
            gmf_u, first_u = self._users(u, tokens[start:start + step] if tokens is not None else None)
            hidden = self.tower(first_u.unsqueeze(1) + items_first)
            score = (gmf_u * w_gmf) @ gmf_items.T + hidden @ w_mlp + self.out.bias
            if self.explicit:
                score = score + self.mean + self.user_bias(u) + self.item_bias.weight.T
            outs.append(score)
        return torch.cat(outs)

    def loss(self, batch: tuple[Any, ...]) -> torch.Tensor:
        if self.explicit:
            users, items, ratings = batch
            return F.mse_loss(self.pair_scores(users, items), ratings)
        users, pos, neg, tokens = batch
        items = torch.cat([pos.unsqueeze(1), neg], 1)
        labels = torch.zeros_like(items, dtype=torch.float32)
        labels[:, 0] = 1.0
        return F.binary_cross_entropy_with_logits(self.pair_scores(users, items, tokens), labels)


def bert_config(params: dict[str, Any], n_items: int) -> Any:
    """The transformer's configuration, built from searched parameters (no download, nothing from a hub)."""
    from transformers import BertConfig

    hidden = int(params["hidden"])
    return BertConfig(
        vocab_size=n_items + 1,  # token 0 pads; item i is token i + 1
        hidden_size=hidden,
        num_hidden_layers=int(params["layers"]),
        num_attention_heads=int(params["heads"]),
        intermediate_size=hidden * int(params.get("ffn_factor", 2)),
        max_position_embeddings=int(params["max_len"]),
        hidden_dropout_prob=float(params["dropout"]),
        attention_probs_dropout_prob=float(params["dropout"]),
        type_vocab_size=1,
        pad_token_id=0,
        is_decoder=True,  # causal self-attention: position t sees items up to t only (SASRec)
        add_cross_attention=False,
        use_cache=False,
    )


class SASRec(nn.Module):
    """Self-attentive sequential recommendation (Kang & McAuley 2018) on a `transformers` BERT encoder.

    The encoder is a `BertModel` with causal masking (`is_decoder=True`); its word embeddings are the item
    embeddings, used again as the output layer (tied), so the whole model is the BertModel and it saves and
    loads with `save_pretrained` / `from_pretrained`. It is trained to predict the next item at every
    position, by a softmax over the true next item and `negatives` items sampled per batch (a BERT-style
    output transform or item bias slowed learning here: several epochs of popularity-level plateau).
    """

    trains_on_windows = True

    def __init__(self, bert: Any, negatives: int) -> None:
        super().__init__()
        self.bert = bert
        self.negatives = negatives
        self.history_length = int(bert.config.max_position_embeddings)

    @classmethod
    def from_params(cls, params: dict[str, Any], n_items: int) -> "SASRec":
        from transformers import BertModel

        return cls(BertModel(bert_config(params, n_items), add_pooling_layer=False), int(params["negatives"]))

    @property
    def item_embeddings(self) -> torch.Tensor:
        return self.bert.embeddings.word_embeddings.weight  # (n_items + 1, hidden); row 0 pads

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).long()
        return self.bert(input_ids=tokens, attention_mask=mask, use_cache=False).last_hidden_state

    def full_scores(self, users: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        last = self.encode(tokens)[:, -1]  # histories are left-padded: the last position is the latest item
        return last @ self.item_embeddings[1:].T

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        inputs, targets, negatives = batch
        hidden = self.encode(inputs)[targets != 0]  # (positions with a next item, hidden)
        target = targets[targets != 0]
        emb = self.item_embeddings
        pos = (hidden * emb[target]).sum(-1, keepdim=True)
        neg = hidden @ emb[negatives].T
        neg = neg.masked_fill(negatives.unsqueeze(0) == target.unsqueeze(1), float("-inf"))  # accidental hits
        logits = torch.cat([pos, neg], 1)
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))
