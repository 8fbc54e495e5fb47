"""Batches and histories built on the training device: index arithmetic over resident tensors, no loaders.

Interactions are sorted by (user, time, item); `offsets[u]` is where user u's block starts. Items are
indices 0..n_items-1; sequential models read tokens (item + 1, 0 pads). Negatives are drawn uniformly over
the catalogue with the trial's generator, on the device (an occasional accidental positive is the usual
price of uniform sampling; SASRec masks the ones that hit the target).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch


def pair_batches(user: torch.Tensor, item: torch.Tensor, offsets: torch.Tensor, rows: torch.Tensor,
                 batch_size: int, n_items: int, negatives: int, history: int,
                 generator: torch.Generator) -> Iterator[tuple[Any, ...]]:
    """(users, positive items, sampled negatives [batch, negatives], tokens of the `history` items before each
    positive or None) over a permutation of `rows`."""
    perm = rows[torch.randperm(len(rows), generator=generator, device=rows.device)]
    for start in range(0, len(perm), batch_size):
        idx = perm[start:start + batch_size]
        users = user[idx]
        neg = torch.randint(n_items, (len(idx), negatives), generator=generator, device=rows.device)
        tokens = history_tokens(item, offsets[users], idx, history) if history else None
        yield users, item[idx], neg, tokens


def rating_batches(user: torch.Tensor, item: torch.Tensor, rating: torch.Tensor, rows: torch.Tensor,
                   batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    perm = rows[torch.randperm(len(rows), generator=generator, device=rows.device)]
    for start in range(0, len(perm), batch_size):
        idx = perm[start:start + batch_size]
        yield user[idx], item[idx], rating[idx]


def window_ends(train_len: torch.Tensor, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training windows of one epoch, as (user, end) with `end` exclusive and relative to the user's block.

    The first window of each user ends with their latest training item; the earlier ones tile the history
    backwards, `length` items apart, from a random shift, so successive epochs cut it at different places
    and every item is a prediction target with a history in front of it.
    """
    device = train_len.device
    users = torch.nonzero(train_len >= 2).squeeze(1)
    n = train_len[users]
    shift = (torch.rand(len(users), generator=generator, device=device) * length).long()
    extra = torch.clamp(torch.div(n - shift - 2, length, rounding_mode="floor"), min=0)
    counts = extra + 1
    owner = torch.repeat_interleave(torch.arange(len(users), device=device), counts)
    starts = torch.cumsum(counts, 0) - counts
    k = torch.arange(len(owner), device=device) - starts[owner]
    end = torch.where(k == 0, n[owner], n[owner] - shift[owner] - k * length)
    return users[owner], end


def window_batches(item: torch.Tensor, offsets: torch.Tensor, train_len: torch.Tensor, length: int,
                   batch_size: int, n_items: int, negatives: int,
                   generator: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    """(input tokens [b, length], next-item tokens [b, length] with 0 = no target, shared negative tokens)."""
    users, ends = window_ends(train_len, length, generator)
    perm = torch.randperm(len(users), generator=generator, device=users.device)
    users, ends = users[perm], ends[perm]
    span = torch.arange(length + 1, device=users.device)
    for start in range(0, len(users), batch_size):
        u, e = users[start:start + batch_size], ends[start:start + batch_size]
        pos = (offsets[u] + e - (length + 1)).unsqueeze(1) + span
        tokens = torch.where(pos >= offsets[u].unsqueeze(1), item[pos.clamp(min=0)] + 1, 0)
        neg = torch.randint(1, n_items + 1, (negatives,), generator=generator, device=users.device)
        yield tokens[:, :-1], tokens[:, 1:], neg


def history_tokens(item: torch.Tensor, first: torch.Tensor, ends: torch.Tensor, length: int) -> torch.Tensor:
    """Items at positions [first, end) (a user's history up to `end`, exclusive), the `length` latest of them,
    as left-padded tokens [len(ends), length]."""
    pos = (ends - length).unsqueeze(1) + torch.arange(length, device=ends.device)
    return torch.where(pos >= first.unsqueeze(1), item[pos.clamp(min=0)] + 1, 0)


def seen_before(item: torch.Tensor, first: torch.Tensor, ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index into `ends`, item) for every interaction at positions [first, end): the items to mask."""
    lengths = ends - first
    which = torch.repeat_interleave(torch.arange(len(ends), device=ends.device), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    pos = first[which] + torch.arange(len(which), device=ends.device) - starts[which]
    return which, item[pos]
