"""The plugin's own families: shapes, self-normalisation, feature gates and their penalty in the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl.api import TabularInfo
from automl.testing import plugin_host, prepare_domain, sample_params
from automl_medical.families import GATED_MLP, SNN

INFO = TabularInfo(task="binary", n_train=200, n_num=751, cardinalities=(3,), n_outputs=1, n_classes=2)


@pytest.mark.parametrize("family", [SNN, GATED_MLP], ids=lambda f: f.name)
def test_sampled_architectures_build_and_predict(family):
    for params in sample_params(family, INFO, n=5):  # also checks that the names are namespaced
        net = family.network(params, INFO)
        out = net(torch.randn(8, 751), torch.randint(0, 3, (8, 1)))
        assert out.shape == (8, 1) and torch.isfinite(out).all()


def test_snn_keeps_activations_normalised_through_depth():
    from automl_medical.networks import SelfNormalizingNet

    torch.manual_seed(0)
    net = SelfNormalizingNet(64, (), 1, [256] * 8, dropout=0.1, input_dropout=0.0).eval()
    h = torch.randn(4096, 64)
    with torch.no_grad():
        for layer in net.body:
            h = layer(h)
    assert abs(float(h.mean())) < 0.15 and 0.7 < float(h.var()) < 1.3  # SELU's fixed point, no normalisation layer


@pytest.fixture(scope="module")
def biopsy_data():
    """breast_biopsy on the CPU as the medical domain's trials see it (the host's tabular device data)."""
    from automl_medical import plugin

    return prepare_domain(plugin_host(plugin, "medical"), ["domain=medical", "dataset=breast_biopsy"]).bind()


def test_gate_penalty_is_part_of_the_training_loss(biopsy_data):
    """The host adds a network's `penalty()` to its training loss (both engines train on that loss)."""
    import torch.nn.functional as F

    from automl_medical.networks import GatedMLP

    n_num = biopsy_data.x_num.shape[1]  # nine scores and the missing-value indicator of V6
    net = GatedMLP(n_num, (), 1, [8], "relu", 0.0, 0.0, gate_penalty=0.3).eval()  # eval: no gate noise
    rows = torch.arange(16)
    batch = (biopsy_data.x_num[rows], biopsy_data.x_cat[rows], biopsy_data.y[rows])
    with torch.no_grad():
        plain = float(F.binary_cross_entropy_with_logits(net(batch[0], batch[1]).squeeze(-1), batch[2]))
        gap = float(biopsy_data.loss(net, batch, {})) - plain
    assert gap == pytest.approx(0.3 * float(net.gates.penalty().detach())) and gap > 0.1
    biopsy_data.loss(net, batch, {}).backward()
    assert (net.gates.mu.grad > 0).all()  # gradient descent pushes every gate towards closing


def test_gates_close_on_noise_and_stay_open_on_informative_features(biopsy, biopsy_data):
    """Nine cytology scores plus 40 pure-noise columns: the penalised gates drop most of the noise."""
    from automl_medical.networks import GatedMLP

    rng = np.random.default_rng(0)
    x = biopsy[[f"V{i}" for i in range(1, 10)]].fillna(1).to_numpy(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    x = np.hstack([x, rng.standard_normal((len(x), 40)).astype(np.float32)])
    y = torch.tensor((biopsy["class"] == "malignant").to_numpy(np.float32))
    x_num, x_cat = torch.tensor(x), torch.zeros(len(x), 0, dtype=torch.long)
    torch.manual_seed(0)
    net = GatedMLP(49, (), 1, [32], "relu", 0.1, 0.0, gate_penalty=0.01)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(300):
        idx = torch.randint(0, len(x), (128,))
        loss = biopsy_data.loss(net, (x_num[idx], x_cat[idx], y[idx]), {})  # the host's loss, with the penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
    open_gates = (net.gates.mu > 0).numpy()
    assert open_gates[9:].mean() < 0.1 and open_gates[:9].sum() >= 3, net.gates.mu
