"""K networks trained as one: a member trains exactly as it would alone, whatever its width, rows and rate; the
stacked TabM is the authors' TabM; the fused AdamW is torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl.config import TrainerConfig
from automl.host import PluginHost
from automl.tabular.networks import TabularStack
from automl.tabular.stacked import load_member_state, member_state
from automl.testing import prepare_domain
from automl.training.vectorised import Member, StackedFit, fit_stacked


@pytest.fixture(scope="module")
def churn():
    data = prepare_domain(PluginHost(entry_points=False), ["dataset=churn"])
    return data, data.bind()


def _stack(info, params, seed=0, ensemble=1, arch="plain"):
    torch.manual_seed(seed)
    return TabularStack(params, info.n_num, info.n_indicators, info.cardinalities, info.n_outputs, info.task,
                        ensemble=ensemble, arch=arch)


PARAMS = [dict(depth=2, width=w, dropout=0.0, transform=t, embedding="piecewise_linear", n_bins=b)
          for w, t, b in [(16, "standard", 4), (64, "quantile_normal", 12), (40, "robust_clip", 8)]]


@pytest.mark.parametrize("ensemble, arch", [(1, "plain"), (4, "batch"), (4, "mini")])
def test_a_member_sliced_out_of_a_stack_is_the_network_its_parameters_build(churn, ensemble, arch):
    data, _ = churn
    info = data.prepared.info
    stack = _stack(info, PARAMS, ensemble=ensemble, arch=arch).eval()
    x_num = torch.randn(3, 50, info.n_num)
    x_cat = torch.stack([torch.randint(0, c, (3, 50)) for c in info.cardinalities], dim=-1)
    out = stack(x_num, x_cat)
    for m, params in enumerate(PARAMS):
        single = _stack(info, [params], seed=m + 1, ensemble=ensemble, arch=arch).eval()
        single.load_state_dict(member_state(stack, m))  # strict: the same names and shapes
        assert torch.allclose(single(x_num[m], x_cat[m]), out[m], atol=1e-5)


def test_members_of_different_widths_and_rows_train_as_they_would_alone(churn):
    """The padded units of narrow members stay zero and the masked steps of members with fewer rows leave them
    untouched: each member's weights after training equal those of the same member trained alone."""
    data, device_data = churn
    p = data.prepared
    train, val = torch.as_tensor(p.train), torch.as_tensor(p.val)
    y_val = device_data.targets(p.val)
    rows = [train, train[:1500], train[:777]]  # different row counts: different numbers of steps an epoch
    members = [Member({"lr": lr, "weight_decay": wd, "batch_size": 128}, r, val, y_val, seed)
               for lr, wd, r, seed in [(1e-3, 1e-4, rows[0], 1), (3e-3, 0.0, rows[1], 2), (2e-3, 1e-2, rows[2], 3)]]
    cfg = TrainerConfig(max_epochs=4, patience=2)
    stack = _stack(p.info, PARAMS)
    alone = []
    for m, params in enumerate(PARAMS):
        single = _stack(p.info, [params])
        single.load_state_dict(member_state(stack, m))
        alone += fit_stacked(StackedFit(single, device_data, [members[m]], cfg, data.plan.objective, data.plan.stopper))
    together = fit_stacked(StackedFit(stack, device_data, members, cfg, data.plan.objective, data.plan.stopper))
    for a, b in zip(together, alone):
        assert a.best_epoch == b.best_epoch and a.value == pytest.approx(b.value, abs=1e-5)
        assert max(float((a.state_dict[k] - b.state_dict[k]).abs().max()) for k in a.state_dict) < 1e-4


def test_the_fused_adamw_is_torchs(churn):
    data, device_data = churn
    p = data.prepared
    train = torch.as_tensor(p.train)
    stack = _stack(p.info, PARAMS[:1])
    reference = _stack(p.info, PARAMS[:1])
    reference.load_state_dict(stack.state_dict())
    member = Member({"lr": 3e-3, "weight_decay": 1e-2, "batch_size": 256}, train, torch.as_tensor(p.val),
                    device_data.targets(p.val), seed=5)
    fit_stacked(StackedFit(stack, device_data, [member], TrainerConfig(max_epochs=1, patience=1),
                           data.plan.objective, data.plan.stopper, keep_last=True))
    # the same epoch by hand with torch.optim.AdamW: the same batches (same generator), the same loss
    device_data.fit_inputs(reference, train)
    opt = torch.optim.AdamW(reference.parameters(), lr=3e-3, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(5)
    perm = train[torch.randperm(len(train), generator=generator)]
    for start in range(0, len(perm), 256):
        idx = perm[start:start + 256].unsqueeze(0)
        losses = device_data.stacked_losses(reference, device_data.stacked_batch(idx), [member.hp])
        opt.zero_grad()
        losses.mean().backward()
        opt.step()
    for name, tensor in reference.state_dict().items():
        assert torch.allclose(tensor, stack.state_dict()[name], atol=1e-5), name


def test_the_stacked_tabm_is_the_authors_tabm():
    """With the authors' weights copied in, a one-member stack (standard inputs, no embeddings) computes what
    `tabm.TabM` computes, submodel by submodel, for both architectures."""
    tabm = pytest.importorskip("tabm")
    torch.manual_seed(0)
    x = torch.randn(32, 6)
    for arch, theirs_arch in (("batch", "tabm"), ("mini", "tabm-mini")):
        theirs = tabm.TabM.make(n_num_features=6, d_out=1, k=4, n_blocks=2, d_block=16, dropout=0.0,
                                arch_type=theirs_arch).eval()
        ours = TabularStack([dict(depth=2, width=16, dropout=0.0, transform="standard", embedding="none")],
                            n_num=6, n_indicators=0, cardinalities=(), n_outputs=1, task="binary", ensemble=4,
                            arch=arch).eval()
        with torch.no_grad():
            if arch == "batch":
                for mine, block in zip(ours.blocks, theirs.backbone.blocks):
                    lin = block[0]
                    mine.weight.copy_(lin.weight.T.unsqueeze(0))
                    mine.r.copy_(lin.r.unsqueeze(0))
                    mine.s.copy_(lin.s.unsqueeze(0))
                    mine.bias.copy_(lin.bias.unsqueeze(0))
            else:
                ours.scaling.r.copy_(theirs.backbone.affine.weight.unsqueeze(0))
                for mine, block in zip(ours.blocks, theirs.backbone.blocks):
                    mine.weight.copy_(block[0].weight.T.unsqueeze(0))
                    mine.bias.copy_(block[0].bias.unsqueeze(0))
            ours.head.weight.copy_(theirs.output.weight.unsqueeze(0))
            ours.head.bias.copy_(theirs.output.bias.unsqueeze(0))
        expected = theirs(x, None)  # (rows, k, 1)
        got = ours.ensemble_logits(x, torch.zeros(32, 0, dtype=torch.long))  # (k, rows, 1)
        assert torch.allclose(got.transpose(0, 1), expected, atol=1e-5), arch


def test_an_ensemble_member_predicts_the_mean_of_its_submodels_probabilities():
    net = TabularStack([dict(depth=1, width=8, dropout=0.0, transform="standard", embedding="none")], n_num=3,
                       n_indicators=0, cardinalities=(), n_outputs=1, task="binary", ensemble=5, arch="batch").eval()
    x, c = torch.randn(10, 3), torch.zeros(10, 0, dtype=torch.long)
    p = torch.sigmoid(net(x, c)).squeeze(-1)
    assert torch.allclose(p, torch.sigmoid(net.ensemble_logits(x, c)).mean(0).squeeze(-1), atol=1e-5)


def test_a_stopped_member_stops_updating_while_the_others_go_on(churn):
    data, device_data = churn
    p = data.prepared
    stack = _stack(p.info, PARAMS[:2])
    alone = _stack(p.info, PARAMS[:1])
    alone.load_state_dict(member_state(stack, 0))
    members = [Member({"lr": 1e-3, "weight_decay": 1e-2, "batch_size": 256}, torch.as_tensor(p.train),
                      torch.as_tensor(p.val), device_data.targets(p.val), seed=s) for s in (1, 2)]

    def report(steps: list, values: list) -> set[int]:
        return {0} if steps[0] == 0 else set()  # member 0 is pruned after its first epoch

    results = fit_stacked(StackedFit(stack, device_data, members, TrainerConfig(max_epochs=3, patience=5),
                                     data.plan.objective, data.plan.stopper, report=report, keep_last=True))
    assert type(results[0]).__name__ == "Pruned" and results[1].epochs == 3 and np.isfinite(results[1].value)
    # member 0 after three epochs of the stack is member 0 after its one epoch alone: no update, no decay since
    fit_stacked(StackedFit(alone, device_data, members[:1], TrainerConfig(max_epochs=1, patience=5),
                           data.plan.objective, data.plan.stopper, keep_last=True))
    stopped = member_state(stack, 0)
    assert all(torch.allclose(stopped[k], v, atol=1e-6) for k, v in alone.state_dict().items())
    load_member_state(stack, 0, alone.state_dict())  # and a member's state can be written back in place
    assert all(torch.equal(member_state(stack, 0)[k], v) for k, v in alone.state_dict().items())


def test_the_members_left_after_one_stops_train_as_they_would_alone(churn):
    """A pruned member leaves the stack (the others go on in a stack cut down to them, moments and all): the
    survivors end exactly where they would alone, and the pruned one keeps its best epoch's weights."""
    data, device_data = churn
    p = data.prepared
    members = [Member({"lr": lr, "weight_decay": wd, "batch_size": 256}, torch.as_tensor(p.train),
                      torch.as_tensor(p.val), device_data.targets(p.val), seed=s)
               for lr, wd, s in [(1e-3, 1e-4, 1), (3e-3, 0.0, 2), (2e-3, 1e-2, 3), (1e-3, 0.0, 4)]]
    cfg = TrainerConfig(max_epochs=3, patience=5)
    stack = _stack(p.info, PARAMS + PARAMS[:1])
    singles = []
    for m, params in enumerate(PARAMS + PARAMS[:1]):
        single = _stack(p.info, [params])
        single.load_state_dict(member_state(stack, m))
        singles.append(single)

    def report(steps: list, values: list) -> set[int]:
        epoch = max(s for s in steps if s is not None)
        assert (values[1] is None) == (epoch > 0) and (values[3] is None) == (epoch > 1)  # left: not reported
        assert (steps[1] is None) == (values[1] is None)
        return {1} if epoch == 0 else {3} if epoch == 1 else set()  # the stack is cut twice

    together = fit_stacked(StackedFit(stack, device_data, members, cfg, data.plan.objective, data.plan.stopper,
                                      report=report))
    assert type(together[1]).__name__ == type(together[3]).__name__ == "Pruned"
    for m in (0, 2):
        alone = fit_stacked(StackedFit(singles[m], device_data, [members[m]], cfg, data.plan.objective,
                                       data.plan.stopper))[0]
        assert together[m].epochs == alone.epochs == 3 and together[m].value == pytest.approx(alone.value, abs=1e-5)
        assert max(float((together[m].state_dict[k] - alone.state_dict[k]).abs().max()) for k in alone.state_dict) < 1e-4
    first = fit_stacked(StackedFit(singles[1], device_data, [members[1]], TrainerConfig(max_epochs=1, patience=5),
                                   data.plan.objective, data.plan.stopper))[0]
    assert all(torch.allclose(member_state(stack, 1)[k], v, atol=1e-5) for k, v in first.state_dict.items())


def test_a_member_that_joins_the_stack_later_trains_as_it_would_alone(churn):
    """Continuous batching: a new member takes a pruned member's place at an epoch boundary while the stack is
    young; it counts its own epochs from its first, and it and the member already training both end exactly where
    they would alone."""
    import copy

    data, device_data = churn
    p = data.prepared
    members = [Member({"lr": lr, "weight_decay": wd, "batch_size": 256}, torch.as_tensor(p.train),
                      torch.as_tensor(p.val), device_data.targets(p.val), seed=s)
               for lr, wd, s in [(1e-3, 1e-4, 1), (3e-3, 0.0, 2), (2e-3, 1e-2, 3)]]
    cfg = TrainerConfig(max_epochs=3, patience=5)
    stack = _stack(p.info, PARAMS[:1] * 2)
    joining = _stack(p.info, PARAMS[:1], seed=7)
    singles = [_stack(p.info, PARAMS[:1]) for _ in range(2)]
    singles[0].load_state_dict(member_state(stack, 1))
    singles[1].load_state_dict(joining.state_dict())
    seen, offered = [], []

    def report(steps: list, values: list) -> set[int]:
        seen.append(list(steps))
        return {0} if steps[0] == 0 else set()

    def refill(free: int):
        offered.append(free)
        return ([members[2]], copy.deepcopy(joining)) if len(offered) == 1 else None

    together = fit_stacked(StackedFit(stack, device_data, members[:2], cfg, data.plan.objective, data.plan.stopper,
                                      report=report, refill=refill))
    assert len(together) == 3 and type(together[0]).__name__ == "Pruned"
    assert seen[0] == [0, 0] and seen[1] == [None, 1, 0] and seen[2] == [None, 2, 1] and seen[3] == [None, None, 2]
    assert offered == [1]  # the pruned member's place; later the stack is too old for members to join (3 // 4)
    for m, single, member in ((1, singles[0], members[1]), (2, singles[1], members[2])):
        alone = fit_stacked(StackedFit(single, device_data, [member], cfg, data.plan.objective, data.plan.stopper))[0]
        assert together[m].epochs == alone.epochs == 3 and together[m].value == pytest.approx(alone.value, abs=1e-5)
        assert max(float((together[m].state_dict[k] - alone.state_dict[k]).abs().max()) for k in alone.state_dict) < 1e-4


def test_a_member_that_ends_its_last_epoch_after_the_deadline_is_pruned(churn):
    """The budget is the budget: a member still training when the search's deadline passed is pruned, even when
    the epoch it was in was its last."""
    import time

    data, device_data = churn
    p = data.prepared
    member = Member({"lr": 1e-3, "weight_decay": 0.0, "batch_size": 256}, torch.as_tensor(p.train),
                    torch.as_tensor(p.val), device_data.targets(p.val), seed=1)
    result = fit_stacked(StackedFit(_stack(p.info, PARAMS[:1]), device_data, [member], TrainerConfig(max_epochs=1),
                                    data.plan.objective, data.plan.stopper, deadline=time.time()))[0]
    assert type(result).__name__ == "Pruned" and "deadline" in str(result)


@pytest.mark.parametrize("fused", [True, False])
def test_each_member_steps_as_torchs_adamw_with_its_own_rate_and_decay(fused):
    """Both update paths (torch's fused kernel per member, and tensor operations) are torch.optim.AdamW per
    member; a member without rows in a step is left as it was."""
    from automl.training.vectorised import _AdamW

    torch.manual_seed(0)
    lrs, decays = [1e-3, 3e-3, 1e-2], [1e-4, 0.0, 1e-2]
    stacked = torch.nn.Parameter(torch.randn(3, 500))
    alone = [torch.nn.Parameter(stacked.detach()[m].clone()) for m in range(3)]
    ours = _AdamW([stacked], lrs, decays, torch.device("cpu"), fused=fused)
    torchs = [torch.optim.AdamW([a], lr=lr, weight_decay=wd) for a, lr, wd in zip(alone, lrs, decays)]
    for step in range(6):
        grad = torch.randn(3, 500)
        stepping = torch.tensor([True, step % 2 == 0, True])
        stacked.grad = grad.clone()
        ours.step(stepping)
        for m in range(3):
            if stepping[m]:
                alone[m].grad = grad[m].clone()
                torchs[m].step()
    for m in range(3):
        assert torch.allclose(stacked.detach()[m], alone[m].detach(), atol=1e-6)


def test_each_members_value_is_what_its_kept_weights_score(churn):
    """Members stop at different epochs (early stopping with little patience, pruning) and leave the stack as
    they do: whatever order they left in, the weights kept for each are those of the epoch its value is from."""
    data, device_data = churn
    p = data.prepared
    val = torch.as_tensor(p.val)
    members = [Member({"lr": lr, "weight_decay": 0.0, "batch_size": 256}, torch.as_tensor(p.train), val,
                      device_data.targets(p.val), seed=s)
               for s, lr in enumerate([3e-2, 1e-3, 1e-2, 3e-4, 5e-3, 2e-2])]
    params = [dict(PARAMS[0], dropout=0.2)] * len(members)
    stack = _stack(p.info, params)

    def report(steps: list, values: list) -> set[int]:
        return {4} if steps[4] == 2 else set()

    results = fit_stacked(StackedFit(stack, device_data, members, TrainerConfig(max_epochs=8, patience=1),
                                     data.plan.objective, data.plan.stopper, report=report))
    finished = [m for m, r in enumerate(results) if not isinstance(r, Exception)]
    assert len({results[m].epochs for m in finished}) > 1  # they did leave at different epochs
    scores = device_data.stacked_predict(stack.eval(), [val] * len(members), 4096)
    for m in finished:
        single = _stack(p.info, [params[m]]).eval()
        single.load_state_dict(results[m].state_dict)
        alone = device_data.stacked_predict(single, [val], 4096)[0]
        assert np.allclose(alone, scores[m], atol=1e-5)
        value = data.plan.objective.fn(members[m].y_val, scores[m])
        assert value == pytest.approx(results[m].value, abs=1e-6)
