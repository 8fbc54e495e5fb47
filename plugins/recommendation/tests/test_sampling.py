"""Batches and histories built on the device: right items, right order, nothing from the held-out rows."""

from __future__ import annotations

import numpy as np
import torch

from automl_recommendation import sampling
from automl_recommendation.metrics import MASKED


def _tensors(prepared):
    p = prepared.prepared
    a = p.arrays
    return (torch.as_tensor(a["user"]), torch.as_tensor(a["item"]), torch.as_tensor(a["offsets"]),
            torch.as_tensor(p.train), p)


def test_windows_predict_each_next_training_item_from_earlier_ones_only(prepared):
    user, item, offsets, train, p = _tensors(prepared)
    train_len = torch.bincount(user[train], minlength=len(offsets) - 1)
    gen = torch.Generator().manual_seed(0)
    length, seen_targets = 20, 0
    for inputs, targets, negatives in sampling.window_batches(item, offsets, train_len, length, 64, p.info.n_items,
                                                              128, gen):
        assert inputs.shape == targets.shape and inputs.shape[1] == length
        assert ((negatives >= 1) & (negatives <= p.info.n_items)).all()
        # the target at position t is the input at position t + 1: one sequence shifted by one
        assert torch.equal(inputs[:, 1:], targets[:, :-1])
        # left padding only: once a window has started, it has no gaps
        started = (inputs != 0).cummax(1).values
        assert torch.equal(started, inputs != 0)
        seen_targets += int((targets != 0).sum())
    # one epoch sees every training row as a target except each user's first, and a random shift may skip
    # up to one window's worth per user
    n_users = int((train_len >= 2).sum())
    assert len(p.train) - n_users - n_users * length <= seen_targets <= len(p.train) - n_users


def test_window_targets_never_reach_validation_or_test_items():
    # one user, 6 training items then validation (7) and test (8): windows see items 1..6 only
    item = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])  # tokens 1..8
    offsets = torch.tensor([0, 8])
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        batches = list(sampling.window_batches(item, offsets, torch.tensor([6]), 4, 8, 8, 3, gen))
        tokens = torch.cat([torch.cat([b[0], b[1]], 1) for b in batches])
        assert tokens.max() <= 6 and (tokens[tokens > 0] >= 1).all()
        targets = torch.cat([b[1] for b in batches])
        assert 6 in targets  # the latest training item is always a target


def test_history_tokens_and_seen_items_match_a_plain_loop(prepared):
    user, item, offsets, _, p = _tensors(prepared)
    rows = torch.as_tensor(np.concatenate([p.val[:50], p.test[:50]]))
    first = offsets[user[rows]]
    tokens = sampling.history_tokens(item, first, rows, 7)
    which, seen = sampling.seen_before(item, first, rows)
    a = p.arrays
    for n, r in enumerate(rows.tolist()):
        start = a["offsets"][a["user"][r]]
        before = a["item"][start:r]
        expected = list(before[-7:] + 1)
        assert tokens[n].tolist() == [0] * (7 - len(expected)) + expected
        assert sorted(seen[which == n].tolist()) == sorted(before.tolist())
        assert a["item"][r] not in before  # the held-out item is never masked


def test_pair_batches_carry_the_history_before_each_positive(prepared):
    user, item, offsets, train, p = _tensors(prepared)
    gen = torch.Generator().manual_seed(1)
    users, pos, neg, tokens = next(sampling.pair_batches(user, item, offsets, train, 256, p.info.n_items, 4, 5, gen))
    assert neg.shape == (256, 4) and tokens.shape == (256, 5)
    rows = (user == users[0]).nonzero().squeeze(1)
    r = int(rows[(item[rows] == pos[0])][0])
    start = int(offsets[users[0]])
    expected = (item[max(start, r - 5):r] + 1).tolist()
    assert tokens[0].tolist() == [0] * (5 - len(expected)) + expected
    again = next(sampling.pair_batches(user, item, offsets, train, 256, p.info.n_items, 4, 5,
                                       torch.Generator().manual_seed(1)))
    assert torch.equal(again[2], neg)  # negatives come from the trial's generator: reproducible


def test_predict_masks_every_earlier_item_and_nothing_else(prepared):
    import torch

    from automl_recommendation.networks import MFBPR

    p = prepared.prepared
    net = MFBPR(p.info.n_users, p.info.n_items, 8, 1, history=3)
    scores = prepared.bind().predict(net, torch.as_tensor(p.test), 256)
    assert scores.shape == (671, 9066) and np.isfinite(scores).all()
    a = p.arrays
    n_masked = (scores == np.float32(MASKED)).sum(axis=1)
    assert np.array_equal(n_masked, p.test - a["offsets"][:-1])  # everything before the test row
    assert (scores[np.arange(671), a["item"][p.test]] > np.float32(MASKED)).all()
