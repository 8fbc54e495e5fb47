"""The vectorised engine: K members of one stacked network trained as one model.

A member is one configuration on one set of training rows: a trial, one fold of a cross-validated trial, or
the fold models of several trials at once. The stacked network (`automl.tabular.stacked`) holds every
member's weights with a leading K dimension; each step draws a batch per member from the member's own rows
with the member's own generator, runs one forward and one backward pass for all of them, and applies a fused
AdamW update with each member's learning rate and weight decay (Loshchilov & Hutter, ICLR 2019: decoupled
weight decay). Members are independent: member k's gradient is its own loss's (the losses are summed, not
averaged), a step in which a member has no rows leaves its weights and optimiser state untouched, and a member
that stops (early stopping, pruning, divergence, the search's deadline) leaves the stack, which the others
train on cut down to themselves (its best epoch's weights are kept aside). So a member trains as it would
alone, in the time of a fraction of a separate fit (HFTA, MLSys 2021).

The update is torch's fused AdamW kernel run on each member's row of one flat buffer (`_AdamW`), not
`torch.optim.AdamW`: it needs a learning rate per member, and it avoids importing `torch._dynamo`, which the
first `torch.optim` step pulls in (about a second of every search process's start-up).

The data must offer the stacked protocol (`StackedData`): batches gathered by a (K, rows) index, per-row
losses of every member, and each member's predictions on its own rows. The tabular device data does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from automl.training.device import autocast_context, trim_heap
from automl.training.engine import CHECK_EVERY, Diverged, EpochJudge, FitResult, Pruned

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from automl.config import TrainerConfig
    from automl.specs import MetricSpec

#: AdamW's defaults, as torch.optim.AdamW has them.
BETAS, EPS = (0.9, 0.999), 1e-8


class StackedData(Protocol):
    """What the vectorised engine needs of the device data."""

    def stacked_batch(self, index: "torch.Tensor") -> Any:
        """The rows of a (K, rows) index, for K members at once."""

    def stacked_losses(self, model: Any, batch: Any, hps: list[dict[str, Any]]) -> "torch.Tensor":
        """Per-row training losses of every member, (K, rows)."""

    def stacked_predict(self, model: Any, rows: list["torch.Tensor"], batch_size: int) -> list["np.ndarray"]:
        """Each member's scores on its own rows (the form the metrics take)."""

    def fit_inputs(self, model: Any, rows: "torch.Tensor", member: int = 0) -> None:
        """Fill member `member`'s data-dependent buffers from its training rows (`DeviceData.fit_inputs`)."""


@dataclass
class Member:
    """One member of a stacked fit: its rows, its hyperparameters, its seed."""

    hp: dict[str, Any]
    train: "torch.Tensor"
    val: "torch.Tensor"
    y_val: "np.ndarray"
    seed: int


@dataclass
class StackedFit:
    """A stacked fit: the model, its members, how to judge them."""

    model: Any
    data: StackedData
    members: list[Member]
    trainer: "TrainerConfig"
    objective: "MetricSpec"
    stopper: Optional["MetricSpec"] = None
    #: Called after each epoch with each member's epoch index (0-based and its own: a member that joined late
    #: counts from its first epoch) and objective (both None: not training); returns the members to stop as pruned.
    report: Optional[Callable[[list[Optional[int]], list[Optional[float]]], set[int]]] = None
    #: Wall-clock time (time.time()) at which members still training are stopped and reported as pruned.
    deadline: Optional[float] = None
    keep_last: bool = False
    #: As `FitRequest.check`: raises `Pruned` (every member still training stops, pruned) or `Interrupted`.
    check: Optional[Callable[[int, int, int], None]] = None
    #: Continuous batching: called at an epoch boundary where members have left, in the stack's first quarter of
    #: `max_epochs` (a member that joined later would train on alone after the others), with the number of free
    #: places (the stack's starting size less the members still training); returns new members and a stacked
    #: model of them, of the same structure and padded sizes as `model` (already initialised), which join the
    #: stack for their own first epoch; or None. Their results follow the first members', in order of joining.
    refill: Optional[Callable[[int], Optional[tuple[list[Member], Any]]]] = None


def fit_stacked(fit: StackedFit) -> list["FitResult | Exception"]:
    """Train every member with early stopping; return each member's `FitResult` (its best epoch's weights, in
    the layout of a stack of one) or the exception that stopped it (`Pruned`, `Diverged`).

    A member that stops leaves the stack: after the epoch it stopped in, the model training on is cut down to the
    members still training (`keep_members`), so a round whose members are mostly pruned early costs what its
    survivors cost; with `fit.refill`, new members take the free places (continuous batching, as a language-model
    server refills its batch as sequences finish: Yu et al., OSDI 2022), so the stack stays full. `fit.model`
    itself ends with every member's kept weights."""
    import copy

    import numpy as np
    import torch

    from automl.tabular.stacked import extend_members, keep_members, member_state

    start = time.perf_counter()
    model, data, members, cfg = fit.model, fit.data, list(fit.members), fit.trainer
    k = capacity = len(members)
    device = members[0].train.device
    model.to(device)
    for m, member in enumerate(members):
        data.fit_inputs(model, member.train, m)
    live_model = model  # the members still training; a cut-down copy once one stops
    ids = list(range(k))  # the member at each position of live_model
    optimiser = _AdamW(_trainable(model), [float(m.hp["lr"]) for m in members],
                       [float(m.hp.get("weight_decay", 0.0)) for m in members], device)
    batch_size = int(members[0].hp["batch_size"])
    generators = [torch.Generator(device=device).manual_seed(m.seed) for m in members]
    judges = [EpochJudge(fit.objective, fit.stopper, cfg.patience) for _ in members]
    joined = [0] * k  # the stack's epochs before each member's first
    outcome: list[Optional[Exception]] = [None] * k
    active = [True] * k
    best = {name: t.detach().clone() for name, t in model.state_dict().items()}
    compute_s, clock = 0.0, time.perf_counter
    amp = autocast_context(device, str(cfg.precision))  # bf16 on a GPU that has it; scores stay full precision

    epoch = 0
    while ids:
        epoch += 1
        live_model.train()
        here = [members[i] for i in ids]
        hps = [m.hp for m in here]
        index, mask = _epoch_index(here, batch_size, [generators[i] for i in ids])
        totals = torch.zeros(len(ids), device=device)
        try:
            for step in range(index.shape[1]):
                if fit.check is not None and step % CHECK_EVERY == 0:
                    fit.check(epoch, step, index.shape[1])
                t0 = clock()
                rows, present = index[:, step], mask[:, step]
                stepping = present.any(1)
                batch = data.stacked_batch(rows)
                with amp:
                    losses = data.stacked_losses(live_model, batch, hps).float()
                counts = present.sum(1).clamp_min(1)
                per_member = (losses * present).sum(1) / counts
                live_model.zero_grad(set_to_none=True)
                (per_member * stepping).sum().backward()
                optimiser.step(stepping)
                compute_s += clock() - t0
                totals += per_member.detach() * stepping
        except Pruned as exc:  # the deadline, mid-epoch: every member still training stops here
            if fit.keep_last:
                _keep(best, live_model, list(range(len(ids))), ids)
            for m in ids:
                active[m], outcome[m] = False, Pruned(f"{exc} (in epoch {epoch - joined[m]})")
            break
        finite = torch.isfinite(totals).tolist()
        for p, m in enumerate(ids):
            if not finite[p]:
                active[m], outcome[m] = False, Diverged(f"training loss became {float(totals[p])} in epoch "
                                                        f"{epoch - joined[m]}")
        scoring = [p for p, m in enumerate(ids) if active[m]]
        if scoring:
            scores = data.stacked_predict(live_model, [m.val for m in here], cfg.eval_batch_size)
            improved = []
            for p in scoring:
                m, s = ids[p], scores[p]
                if not bool(np.isfinite(s).all()):
                    active[m], outcome[m] = False, Diverged(f"validation predictions are not finite in epoch "
                                                            f"{epoch - joined[m]}")
                    continue
                try:
                    if judges[m].update(epoch - joined[m], members[m].y_val, s):
                        improved.append(p)
                except Diverged as exc:
                    active[m], outcome[m] = False, exc
            _keep(best, live_model, improved, ids)
        values = [judges[m].history[-1] if active[m] and judges[m].history else None for m in range(k)]
        if fit.report is not None:
            steps = [epoch - joined[m] - 1 if values[m] is not None else None for m in range(k)]
            for m in fit.report(steps, values):
                if active[m]:
                    active[m], outcome[m] = False, Pruned(f"pruned after epoch {epoch - joined[m]}")
        for m in ids:
            if active[m] and judges[m].done:
                active[m] = False  # early stopping: its best epoch is kept
        if fit.deadline is not None and time.time() >= fit.deadline:
            for m in ids:  # still training at the deadline (its last epoch included): pruned, as the budget says
                if active[m]:
                    active[m], outcome[m] = False, Pruned(f"stopped at the search's deadline after epoch "
                                                          f"{epoch - joined[m]}")
        for m in ids:
            if active[m] and epoch - joined[m] >= cfg.max_epochs:
                active[m] = False  # its last epoch: its best epoch is kept
        still = [p for p, m in enumerate(ids) if active[m]]
        if fit.keep_last:  # a refit keeps the last epoch: stopping members leave theirs
            _keep(best, live_model, [p for p, m in enumerate(ids) if not active[m]], ids)
        if still and len(still) < len(ids):
            if live_model is model:  # the caller's model keeps every member; training goes on in a copy
                live_model = copy.deepcopy(model)
            keep_members(live_model, still)
            optimiser.keep(_trainable(live_model), still)
            trim_heap()  # the old stack's tensors, of sizes the new one will not ask for again
        ids = [ids[p] for p in still]
        # members join while the stack is young: one that joined late would train on long after the others
        joins = fit.refill is not None and len(ids) < capacity and epoch <= max(1, cfg.max_epochs // 4)
        new = fit.refill(capacity - len(ids)) if joins else None
        if new:
            joining, extra = new
            extra.to(device)
            for j, member in enumerate(joining):
                data.fit_inputs(extra, member.train, j)
            lrs, decays = [float(m.hp["lr"]) for m in joining], [float(m.hp.get("weight_decay", 0.0)) for m in joining]
            if ids:  # live_model is a copy here: a member left, or there would be no free place
                extend_members(live_model, extra)
                optimiser.extend(_trainable(live_model), lrs, decays)
            else:  # every member had stopped: the new ones are the whole stack
                live_model = copy.deepcopy(extra)
                optimiser = _AdamW(_trainable(live_model), lrs, decays, device)
            extend_members(model, extra)
            for name, tensor in extra.state_dict().items():
                best[name] = torch.cat([best[name], tensor.detach().to(best[name].device)])
            n = len(joining)
            ids += list(range(k, k + n))
            members += joining
            generators += [torch.Generator(device=device).manual_seed(m.seed) for m in joining]
            judges += [EpochJudge(fit.objective, fit.stopper, cfg.patience) for _ in joining]
            joined += [epoch] * n
            outcome += [None] * n
            active += [True] * n
            k += n

    model.load_state_dict(best)
    wall = clock() - start
    results: list[FitResult | Exception] = []
    for m, judge in enumerate(judges):
        if outcome[m] is not None:
            results.append(outcome[m])
            continue
        if not judge.history:
            results.append(Diverged("no validation epoch completed"))
            continue
        value, best_epoch = (judge.history[-1], len(judge.history)) if fit.keep_last else \
            (judge.value, judge.best_epoch)
        results.append(FitResult(value, best_epoch, len(judge.history), member_state(model, m), judge.history,
                                 wall / k, compute_s / k))
    return results


def _trainable(model: Any) -> list["torch.Tensor"]:
    return [p for p in model.parameters() if p.requires_grad]


def _epoch_index(members: list[Member], batch_size: int,
                 generators: list[Any]) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(K, steps, batch) row index and mask of one epoch: each member's rows in its own random order, cut into
    batches; members with fewer rows are padded with masked rows. A last batch of one row is dropped,
    as the single-network batches do (a batch of one cannot be normalised)."""
    import torch

    k = len(members)
    device = members[0].train.device
    counts = [len(m.train) for m in members]
    steps = max(max(math.ceil(n / batch_size) for n in counts), 1)
    index = torch.zeros(k, steps * batch_size, dtype=torch.long, device=device)
    mask = torch.zeros(k, steps * batch_size, dtype=torch.bool, device=device)
    for m, (member, n) in enumerate(zip(members, counts)):
        if not n:
            continue
        perm = member.train[torch.randperm(n, generator=generators[m], device=device)]
        usable = n if n % batch_size != 1 else n - 1
        index[m, :usable] = perm[:usable]
        mask[m, :usable] = True
    return index.view(k, steps, batch_size), mask.view(k, steps, batch_size)


def _keep(best: dict[str, "torch.Tensor"], model: Any, positions: list[int], ids: list[int]) -> None:
    """Copy the weights at `positions` of the (possibly cut-down) `model` into the best-epoch copy of the full
    stack, at the members `ids` names (every tensor of a stack has K first)."""
    if not positions:
        return
    import torch

    with torch.no_grad():
        device = next(iter(best.values())).device
        source = torch.as_tensor(positions, device=device)
        target = torch.as_tensor([ids[p] for p in positions], device=device)
        for name, tensor in model.state_dict().items():
            best[name].index_copy_(0, target, tensor.index_select(0, source))


class _AdamW:
    """AdamW with a learning rate and weight decay per member: every trainable parameter (each with K members
    first) becomes a view into one (K, n) buffer, so member m's weights, gradient and moments are one
    contiguous row each.

    A step runs torch's fused AdamW kernel (`torch._fused_adamw_`, what `torch.optim.AdamW(fused=True)` calls)
    once per member on its row: one pass over memory instead of a dozen tensor operations (15x faster on a CPU
    for a 300k-parameter member). The kernel is called directly because `torch.optim` cannot give each member
    its own learning rate without making each member's row a parameter of its own, and because importing it
    pulls in `torch._dynamo` (about a second of every search process's start-up). A torch without the kernel
    gets the same update written out in tensor operations. `tests/test_stacked.py` checks both against
    `torch.optim.AdamW`.

    `step(stepping)` updates only the members that had rows in the step (their moments and step counts
    included); `keep(params, positions)` follows the model when stopped members leave it.
    """

    def __init__(self, params: list["torch.Tensor"], lrs: list[float], decays: list[float],
                 device: "torch.device", fused: Optional[bool] = None) -> None:
        import torch

        k = len(lrs)
        self._bind(params, k)
        self.lrs, self.decays = list(lrs), list(decays)
        self.fused = hasattr(torch, "_fused_adamw_") if fused is None else fused
        self.steps = torch.zeros(k, 1, dtype=torch.float32, device=device)
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)

    def _bind(self, params: list["torch.Tensor"], k: int) -> None:
        """Make `params` (each with K members first) views into one (K, n) buffer."""
        import torch

        self.params = params
        self.sizes = [p[0].numel() for p in params]
        self.flat = torch.cat([p.detach().reshape(k, -1) for p in params], dim=1)
        offset = 0
        with torch.no_grad():
            for p, n in zip(params, self.sizes):  # the parameters now live in the flat buffer
                p.data = self.flat[:, offset:offset + n].view_as(p)
                offset += n

    def keep(self, params: list["torch.Tensor"], positions: list[int]) -> None:
        """Follow a model cut down to the members at `positions` (`keep_members`): `params` are its parameters,
        already cut; every member's moments, step count, learning rate and weight decay go with it."""
        import torch

        index = torch.as_tensor(positions, device=self.flat.device)
        self._bind(params, len(positions))
        for name in ("steps", "m", "v"):
            setattr(self, name, getattr(self, name).index_select(0, index))
        self.lrs, self.decays = [self.lrs[p] for p in positions], [self.decays[p] for p in positions]

    def extend(self, params: list["torch.Tensor"], lrs: list[float], decays: list[float]) -> None:
        """Follow a model that new members joined (`extend_members`): `params` are its parameters, the new
        members last; theirs start with zero moments and step counts."""
        import torch

        n, k = len(lrs), self.flat.shape[0] + len(lrs)
        self._bind(params, k)
        for name in ("steps", "m", "v"):
            old = getattr(self, name)
            setattr(self, name, torch.cat([old, old.new_zeros(n, old.shape[1])]))
        self.lrs, self.decays = self.lrs + list(lrs), self.decays + list(decays)

    def step(self, stepping: "torch.Tensor") -> None:
        import torch

        k = self.flat.shape[0]
        with torch.no_grad():
            grad = torch.cat([p.grad.reshape(k, -1) if p.grad is not None else torch.zeros(k, n, device=p.device)
                              for p, n in zip(self.params, self.sizes)], dim=1)
            if self.fused:
                self._fused_step(grad, stepping.tolist())
            else:
                self._tensor_step(grad, stepping)

    def _fused_step(self, grad: "torch.Tensor", stepping: list[bool]) -> None:
        import torch

        b1, b2 = BETAS
        for m in range(self.flat.shape[0]):
            if not stepping[m]:  # no rows for this member in this step: weights and moments untouched
                continue
            self.steps[m] += 1.0  # the kernel reads the step count; torch.optim increments it first, as here
            torch._fused_adamw_([self.flat[m]], [grad[m]], [self.m[m]], [self.v[m]], [], [self.steps[m]],
                                lr=self.lrs[m], beta1=b1, beta2=b2, weight_decay=self.decays[m], eps=EPS,
                                amsgrad=False, maximize=False)

    def _tensor_step(self, grad: "torch.Tensor", stepping: "torch.Tensor") -> None:
        import torch

        b1, b2 = BETAS
        k = self.flat.shape[0]
        go = stepping.view(k, 1).float()
        lr = torch.as_tensor(self.lrs, dtype=torch.float32, device=self.flat.device).view(k, 1)
        decay = torch.as_tensor(self.decays, dtype=torch.float32, device=self.flat.device).view(k, 1)
        self.steps += go
        t = self.steps.clamp_min(1.0)
        # moments move only for members that stepped: a member without rows in this step is untouched
        self.m.mul_(1 - (1 - b1) * go).add_(grad * go, alpha=1 - b1)
        self.v.mul_(1 - (1 - b2) * go).addcmul_(grad * go, grad, value=1 - b2)
        self.flat.mul_(1 - lr * decay * go)
        denom = self.v.sqrt().div_(torch.sqrt(1 - b2 ** t)).add_(EPS)
        self.flat.addcdiv_(self.m * (lr * go / (1 - b1 ** t)), denom, value=-1.0)
