"""Tabular building blocks: every host family trains, calibration, bootstrap intervals, predictor files."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch

from automl.evaluation import bootstrap_ci
from automl.search.context import FamilyTrial
from automl.tabular.calibration import apply_calibration, fit_calibration
from automl.tabular.families import FAMILIES, TabularInfo, ft_transformer_accepts, max_width

INFO = TabularInfo(task="binary", n_train=2850, n_num=12, cardinalities=(7, 6, 3, 5), n_outputs=1, n_classes=2)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_host_family_samples_builds_and_learns(family):
    """A sampled architecture fits a learnable signal: the loss falls on a real optimisation."""
    torch.manual_seed(0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    params = family.search_space(FamilyTrial(study.ask(), family.name), INFO)
    json.dumps(params)  # parameters are stored in predictor.json
    net = family.network(params, INFO)
    x_num, x_cat = torch.randn(256, 12), torch.randint(0, 3, (256, 4))
    y = (x_num[:, 0] + (x_cat[:, 1] == 2).float() > 0.5).float()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x_num, x_cat).squeeze(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_widths_scale_with_the_data():
    small, large = TabularInfo("binary", 450), TabularInfo("binary", 200_000)
    assert max_width(small) == 128 and max_width(INFO) == 256 and max_width(large) == 1024


def test_ft_transformer_declines_very_wide_data():
    assert ft_transformer_accepts(INFO)
    assert not ft_transformer_accepts(TabularInfo("binary", 200, n_num=750))
    assert not ft_transformer_accepts(TabularInfo("binary", 2000, n_num=80))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_improves_a_miscalibrated_score(method):
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=4000) < truth).astype(int)
    overconfident = 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))
    cal = fit_calibration(y[:2000], overconfident[:2000], method)
    json.dumps(cal)
    fixed = apply_calibration(overconfident[2000:], cal)
    assert brier_score_loss(y[2000:], fixed) < brier_score_loss(y[2000:], overconfident[2000:]) - 0.005
    assert fit_calibration(y, truth, "none") is None and apply_calibration(truth, None) is truth


def test_bootstrap_interval_brackets_the_estimate():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(y * 0.3 + rng.uniform(size=400) * 0.7, 0, 1)
    lo, hi = bootstrap_ci(roc_auc_score, y, p, n_boot=200)
    point = roc_auc_score(y, p)
    assert lo < point < hi and 0.02 < hi - lo < 0.2
    assert bootstrap_ci(roc_auc_score, y, p, n_boot=200) == (lo, hi)  # seeded


class _Constant(torch.nn.Module):
    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x_num), -1)


@pytest.mark.parametrize(("task", "members", "expected"), [
    # probabilities are averaged: sigmoid(10) ~ 1 and sigmoid(-10) ~ 0 give 0.5, not a logit of 0 by accident
    ("binary", [[10.0], [-10.0], [0.0]], [0.5]),
    ("binary", [[np.log(3.0)], [0.0]], [(0.75 + 0.5) / 2]),
    ("multiclass", [[0.0, np.log(3.0)], [np.log(3.0), 0.0]], [0.5, 0.5]),
    ("regression", [[1.0], [3.0]], [2.0]),
])
def test_an_average_of_models_averages_their_probabilities_or_values(task, members, expected):
    from automl.tabular.averaging import WeightedAverage
    from automl.tabular.objective import outputs_to_scores

    bag = WeightedAverage([_Constant(m) for m in members], task)
    out = outputs_to_scores(bag(torch.zeros(4, 2), torch.zeros(4, 0, dtype=torch.long)), task)
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float32).expand_as(out), atol=1e-5)
    # the state dict round-trips into a freshly built average, as the predictor loads it
    again = WeightedAverage([_Constant([0.0] * len(members[0])) for _ in members], task)
    again.load_state_dict(bag.state_dict())
    assert torch.equal(again(torch.zeros(1, 2), torch.zeros(1, 0, dtype=torch.long)),
                       bag(torch.zeros(1, 2), torch.zeros(1, 0, dtype=torch.long)))


def test_weights_decide_each_members_share():
    from automl.tabular.averaging import WeightedAverage
    from automl.tabular.objective import outputs_to_scores

    members = [_Constant([np.log(9.0)]), _Constant([0.0])]  # P = 0.9 and 0.5
    average = WeightedAverage(members, "binary", weights=[3.0, 1.0])
    out = outputs_to_scores(average(torch.zeros(2, 2), torch.zeros(2, 0, dtype=torch.long)), "binary")
    assert torch.allclose(out, torch.tensor([0.8, 0.8]), atol=1e-5)  # (3 * 0.9 + 0.5) / 4
