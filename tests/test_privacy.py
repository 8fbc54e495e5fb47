"""Differential privacy (`privacy.epsilon`): DP-SGD through Opacus, its accounting in the run's files, per-row
gradients that match Opacus's own, clipping and noise that really apply, families DP-SGD cannot train."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from automl import AutoML, hookimpl
from automl.errors import AutoMLError
from automl.specs import ModelFamily
from automl.tasks import TABULAR_TASKS

pytest.importorskip("opacus")


@pytest.fixture(scope="module")
def credit_data(credit_frame):
    """credit_data in the tabular domain, prepared as a run prepares it (one validation split)."""
    from automl.host import PluginHost
    from automl.testing.kit import prepare_domain

    return prepare_domain(PluginHost(entry_points=False),
                          ["search.cv.below_rows=0", "data.target=Status", "privacy.epsilon=3"], frame=credit_frame)


@pytest.fixture(scope="module")
def private_run(tmp_path_factory, credit_frame):
    """A real DP search on credit_data. `search.cv.below_rows=5000` would cross-validate these 4,454 rows (as the
    finance_risk domain does): under privacy the trials validate on the split instead."""
    run_dir = tmp_path_factory.mktemp("private")
    AutoML(overrides=["privacy.epsilon=3", "search.n_trials=2", "trainer.max_epochs=1", "search.n_workers=0",
                      "search.families=[mlp]", "search.cv.below_rows=5000", "report=false", f"run_dir={run_dir}"],
           entry_points=False).fit(data=credit_frame, target="Status")
    return run_dir


def test_search_records_spent_epsilon_in_metrics_leaderboard_and_card(private_run):
    metrics = json.loads((private_run / "metrics.json").read_text())
    run = json.loads((private_run / "run.json").read_text())
    p = metrics["privacy"]
    n_train = run["data"]["split"]["train"]
    assert p["epsilon_target"] == 3.0
    assert p["delta"] == pytest.approx(1.0 / n_train) and p["delta_default"]  # delta defaults to 1 / training rows
    assert 0.0 < p["model"]["epsilon"] <= 3.0 and p["model"]["noise_multiplier"] > 0
    assert p["model"]["steps"] == p["model"]["planned_steps"]  # one epoch, no early stop: the whole budget
    assert p["search"]["fits"] == 2 and p["model"]["epsilon"] < p["search"]["epsilon"] < 2 * 3.0  # RDP composes
    assert any("validation rows" in item for item in p["not_covered"])
    assert len(metrics["model"]["members"]) == 1  # one trial: an ensemble would compose
    assert "validation split" in metrics["validation_rows"]  # not cross-validated under privacy

    board = pd.read_csv(private_run / "leaderboard.csv")
    done = board[board.state == "complete"]
    assert len(done) == 2 and (done.epsilon > 0).all() and (done.epsilon <= 3.0).all()
    assert done["param.max_grad_norm"].notna().all()  # the clipping norm is searched
    accounting = json.loads(done.iloc[0]["privacy"])
    assert accounting["epsilon"] == done.iloc[0]["epsilon"] and accounting["accountant"] == "rdp"

    card = (private_run / "model_card.md").read_text()
    assert "## Differential privacy" in card and "Not covered by the guarantee" in card
    assert f"{p['model']['epsilon']:.4g}" in card


def test_delta_defaults_to_one_over_training_rows():
    from automl.training.private import Privacy

    assert Privacy.of(3.0, None, 2850).delta == pytest.approx(1 / 2850)
    assert Privacy.of(3.0, 1e-6, 2850).delta == 1e-6
    assert Privacy.of(None, None, 2850) is None


def test_accountant_calibration_meets_the_budget_and_early_stopping_spends_less():
    from automl.training.private import Privacy, epsilon_of, plan_noise

    privacy = Privacy(3.0, 1e-4)
    plan = plan_noise(privacy, n_rows=2850, batch_size=64, epochs=20)
    assert plan.steps_per_epoch == 45 and plan.steps == 900 and plan.sample_rate == pytest.approx(1 / 45)
    full = epsilon_of(plan.history, privacy.delta)
    half = epsilon_of([(plan.noise_multiplier, plan.sample_rate, plan.steps // 2)], privacy.delta)
    assert 2.9 < full <= 3.0 and half < full


def test_input_maps_are_fitted_on_public_values_not_training_rows(credit_data):
    """Quantile knots and bins are training values when fitted on the rows; under privacy they come from the
    public reference sample, so two different tables of one shape give the same maps."""
    import torch

    from automl.tabular.families import mlp_network
    from automl.training.private import public_inputs

    info = credit_data.prepared.info
    params = {"depth": 1, "width": 8, "dropout": 0.0, "transform": "quantile_normal",
              "embedding": "piecewise_linear", "n_bins": 8}
    data = credit_data.bind()
    nets = [mlp_network(params, info) for _ in range(3)]
    public_inputs(nets[0], data)
    public_inputs(nets[1], type("Other", (), {"x_num": data.x_num * 7.0 + 3.0})())
    data.fit_inputs(nets[2], torch.as_tensor(credit_data.prepared.train))
    for name in ("transform.knots", "embedding.edges"):
        public = [dict(n.named_buffers())[name] for n in nets]
        assert torch.equal(public[0], public[1]) and not torch.allclose(public[0], public[2]), name


def _mean_clipped_and_raw(net, data, batch, clip):
    import torch
    from opacus.optimizers import DPOptimizer

    from automl.training.private import _RowLoss

    rows = _RowLoss(net, data, {})
    grads, _ = rows(batch)
    raw = torch.cat([g.mean(0).flatten() for g in grads.values()]).norm()
    opt = DPOptimizer(torch.optim.SGD(net.parameters(), lr=0.0), noise_multiplier=0.0, max_grad_norm=clip,
                      expected_batch_size=len(batch[0]))
    rows.assign(grads)
    opt.step()
    step = torch.cat([p.grad.flatten() for p in net.parameters()]).norm()
    return float(step), float(raw), grads


@pytest.mark.filterwarnings("ignore:Full backward hook")  # Opacus's hooks on inputs that need no gradient
def test_per_row_gradients_match_opacus_and_are_clipped(credit_data):
    """Our per-row gradients (torch.func) equal Opacus's GradSampleModule's on a network its hooks support, and
    Opacus's DPOptimizer clips each of them: the step is at most C however large the gradients."""
    import torch
    from opacus import GradSampleModule

    from automl.tabular.families import dcn_network

    torch.manual_seed(0)
    data = credit_data.bind()
    info = credit_data.prepared.info
    net = dcn_network({"n_cross": 2, "deep_widths": [16], "dropout": 0.0}, info)
    rows = torch.as_tensor(credit_data.prepared.train[:32])
    batch = data.stacked_batch(rows)

    clip = 1e-3
    step, raw, grads = _mean_clipped_and_raw(net, data, batch, clip)
    assert raw > 10 * clip and 0 < step <= clip * 1.0001  # every row's gradient clipped to C, then averaged

    gsm = GradSampleModule(net, loss_reduction="mean")
    net.zero_grad()
    data.loss(gsm, batch, {}).backward()
    for name, p in net.named_parameters():
        assert torch.allclose(grads[f"net.{name}"], p.grad_sample, atol=1e-5, rtol=1e-4), name


def test_tiny_epsilon_is_noise_large_epsilon_learns(credit_data):
    """The noise is real: at epsilon = 0.05 the model learns far less than at epsilon = 1000 (same seed, same
    network, same steps)."""
    import torch

    from automl.tabular.families import mlp_network
    from automl.training.engine import FitRequest
    from automl.training.private import Privacy, fit_private

    data, prepared = credit_data.bind(), credit_data.prepared
    trainer = credit_data.cfg.trainer.__class__(max_epochs=3, patience=10)

    def auc(epsilon: float) -> tuple[float, dict]:
        torch.manual_seed(0)
        net = mlp_network({"depth": 1, "width": 32, "dropout": 0.0, "transform": "standard", "embedding": "none"},
                          prepared.info)
        hp = {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 128, "max_grad_norm": 1.0}
        result = fit_private(FitRequest(
            model=net, data=data, train=torch.as_tensor(prepared.train), val=torch.as_tensor(prepared.val),
            y_val=data.targets(prepared.val), hp=hp, trainer=trainer, objective=credit_data.plan.objective, seed=0,
            stopper=credit_data.plan.stopper, privacy=Privacy(epsilon, 1e-5)))
        net.load_state_dict(result.state_dict)
        from sklearn.metrics import roc_auc_score

        return roc_auc_score(data.targets(prepared.val), data.predict(net, torch.as_tensor(prepared.val), 4096)), \
            result.privacy

    noisy, noisy_acc = auc(0.05)
    learned, learned_acc = auc(1000.0)
    assert noisy_acc["noise_multiplier"] > 10 * learned_acc["noise_multiplier"]
    assert noisy_acc["epsilon"] <= 0.05 and learned_acc["epsilon"] <= 1000.0
    assert learned > 0.75 and learned - noisy > 0.05, (learned, noisy)


# -- a family DP-SGD cannot train ---------------------------------------------------------------------------------


def _bn_space(trial, info):
    return {"width": trial.suggest_int("width", 8, 16)}


def _bn_network(params, info):
    import torch

    from automl.tabular.networks import FeatureInput

    class Normed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input = FeatureInput(info.n_num, tuple(info.cardinalities))
            self.body = torch.nn.Sequential(torch.nn.Linear(self.input.out_features, params["width"]),
                                            torch.nn.BatchNorm1d(params["width"]), torch.nn.ReLU(),
                                            torch.nn.Linear(params["width"], info.n_outputs))

        def forward(self, x_num, x_cat):
            return self.body(self.input(x_num, x_cat))

    return Normed()


class NormedPlugin:
    @hookimpl
    def automl_register_model_families(self):
        return [ModelFamily("normed", TABULAR_TASKS, _bn_space, network=_bn_network)]


def test_batchnorm_family_is_declined_with_the_reason(credit_frame, tmp_path):
    from automl.training.private import PrivacyUnsupported, check_network

    with pytest.raises(PrivacyUnsupported, match="BatchNorm"):
        check_network(_bn_network({"width": 8}, type("Info", (), {"n_num": 3, "cardinalities": (), "n_outputs": 1})))
    with pytest.raises(AutoMLError, match=r"normed: Opacus cannot make Normed private: BatchNorm1d"):
        AutoML(overrides=["privacy.epsilon=3", "search.n_trials=1", "trainer.max_epochs=1", "search.n_workers=0",
                          "search.families=[normed]", f"run_dir={tmp_path}"],
               plugins=[("normed", NormedPlugin())], entry_points=False).fit(data=credit_frame, target="Status")


def test_lightning_engine_refuses_privacy_instead_of_training_without_it(credit_frame, tmp_path):
    with pytest.raises(AutoMLError, match="trainer.engine=fast"):
        AutoML(overrides=["privacy.epsilon=3", "search.n_trials=1", "trainer.max_epochs=1", "search.n_workers=0",
                          "search.families=[dcn]", "trainer.engine=lightning", f"run_dir={tmp_path}"],
               entry_points=False).fit(data=credit_frame, target="Status")


def test_no_privacy_no_accounting():
    from automl.records import FinalReport

    report = FinalReport(test={}, validation={}, model={}, n_test=0, validation_rows="")
    assert report.privacy is None and FinalReport.from_json(report.to_json()).privacy is None
    assert math.isfinite(FinalReport.from_json({**report.to_json(), "privacy": {"epsilon_target": 1.0}})
                         .privacy["epsilon_target"])
