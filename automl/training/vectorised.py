"""The vectorised engine: K members of one stacked network trained as one model.

A member is one configuration on one set of training rows: a trial, one fold of a cross-validated trial, or
the fold models of several trials at once. The stacked network (`automl.tabular.stacked`) holds every
member's weights with a leading K dimension; each step draws a batch per member from the member's own rows
with the member's own generator, runs one forward and one backward pass for all of them, and applies a fused
AdamW update with each member's learning rate and weight decay (Loshchilov & Hutter, ICLR 2019: decoupled
weight decay). Members are independent: member k's gradient is its own loss's (the losses are summed, not
averaged), a step in which a member has no rows leaves its weights and optimiser state untouched, and a member
that stops (early stopping, pruning, divergence, the search's deadline) stops updating while the others go
on. So a member trains as it would alone, in the time of a fraction of a separate fit (HFTA, MLSys 2021).

The update is written out with tensor operations rather than `torch.optim.AdamW`: it needs a learning rate per
member inside one tensor, and it avoids importing `torch._dynamo`, which the first `torch.optim` step pulls in
(about a second of every search process's start-up).

The data must offer the stacked protocol (`StackedData`): batches gathered by a (K, rows) index, per-row
losses of every member, and each member's predictions on its own rows. The tabular device data does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from automl.training.device import autocast_context
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
    #: Called after each epoch with the epoch index and each member's objective (None: not training);
    #: returns the members to stop as pruned.
    report: Optional[Callable[[int, list[Optional[float]]], set[int]]] = None
    #: Wall-clock time (time.time()) at which members still training are stopped and reported as pruned.
    deadline: Optional[float] = None
    keep_last: bool = False
    #: As `FitRequest.check`: raises `Pruned` (every member still training stops, pruned) or `Interrupted`.
    check: Optional[Callable[[int, int, int], None]] = None


def fit_stacked(fit: StackedFit) -> list["FitResult | Exception"]:
    """Train every member with early stopping; return each member's `FitResult` (its best epoch's weights, in
    the layout of a stack of one) or the exception that stopped it (`Pruned`, `Diverged`)."""
    import numpy as np
    import torch

    from automl.tabular.stacked import member_state

    start = time.perf_counter()
    model, data, members, cfg = fit.model, fit.data, fit.members, fit.trainer
    k = len(members)
    device = members[0].train.device
    model.to(device)
    for m, member in enumerate(members):
        data.fit_inputs(model, member.train, m)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = _AdamW(params, [float(m.hp["lr"]) for m in members],
                       [float(m.hp.get("weight_decay", 0.0)) for m in members], device)
    batch_size = int(members[0].hp["batch_size"])
    generators = [torch.Generator(device=device).manual_seed(m.seed) for m in members]
    judges = [EpochJudge(fit.objective, fit.stopper, cfg.patience) for _ in members]
    outcome: list[Optional[Exception]] = [None] * k
    active = [True] * k
    best = {name: t.detach().clone() for name, t in model.state_dict().items()}
    compute_s, clock = 0.0, time.perf_counter
    amp = autocast_context(device, str(cfg.precision))  # bf16 on a GPU that has it; scores stay full precision

    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        index, mask = _epoch_index(members, batch_size, generators, active)
        totals = torch.zeros(k, device=device)
        try:
            for step in range(index.shape[1]):
                if fit.check is not None and step % CHECK_EVERY == 0:
                    fit.check(epoch, step, index.shape[1])
                t0 = clock()
                rows, present = index[:, step], mask[:, step]
                stepping = present.any(1)
                batch = data.stacked_batch(rows)
                with amp:
                    losses = data.stacked_losses(model, batch, [m.hp for m in members]).float()
                counts = present.sum(1).clamp_min(1)
                per_member = (losses * present).sum(1) / counts
                model.zero_grad(set_to_none=True)
                (per_member * stepping).sum().backward()
                optimiser.step(stepping)
                compute_s += clock() - t0
                totals += per_member.detach() * stepping
        except Pruned as exc:  # the deadline, mid-epoch: every member still training stops here
            for m in range(k):
                if active[m]:
                    active[m], outcome[m] = False, Pruned(f"{exc} (in epoch {epoch})")
            break
        finite = torch.isfinite(totals).tolist()
        for m in range(k):
            if active[m] and not finite[m]:
                active[m], outcome[m] = False, Diverged(f"training loss became {float(totals[m])} in epoch {epoch}")
        live = [m for m in range(k) if active[m]]
        if live:
            # every member is scored (a stopped one costs a forward pass, no more); only live ones are judged
            scores = data.stacked_predict(model, [m.val for m in members], cfg.eval_batch_size)
            improved = []
            for m in live:
                s = scores[m]
                if not bool(np.isfinite(s).all()):
                    active[m], outcome[m] = False, Diverged(f"validation predictions are not finite in epoch {epoch}")
                    continue
                try:
                    if judges[m].update(epoch, members[m].y_val, s):
                        improved.append(m)
                except Diverged as exc:
                    active[m], outcome[m] = False, exc
            _keep(best, model, improved)
        values = [judges[m].history[-1] if active[m] and judges[m].history else None for m in range(k)]
        if fit.report is not None:
            for m in fit.report(epoch - 1, values):
                if active[m]:
                    active[m], outcome[m] = False, Pruned(f"pruned after epoch {epoch}")
        for m in range(k):
            if active[m] and judges[m].done:
                active[m] = False  # early stopping: its best epoch is kept
        if fit.deadline is not None and time.time() >= fit.deadline:
            for m in range(k):
                if active[m]:
                    active[m], outcome[m] = False, Pruned(f"stopped at the search's deadline after epoch {epoch}")
        optimiser.freeze([not a for a in active])
        if not any(active):
            break

    if not fit.keep_last:
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


def _epoch_index(members: list[Member], batch_size: int, generators: list[Any],
                 active: list[bool]) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(K, steps, batch) row index and mask of one epoch: each member's rows in its own random order, cut into
    batches; members with fewer rows (or done) are padded with masked rows. A last batch of one row is dropped,
    as the single-network batches do (a batch of one cannot be normalised)."""
    import torch

    k = len(members)
    device = members[0].train.device
    counts = [len(m.train) if a else 0 for m, a in zip(members, active)]
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


def _keep(best: dict[str, "torch.Tensor"], model: Any, members: list[int]) -> None:
    """Copy the improved members' current weights into the best-epoch copy (every tensor has K first)."""
    if not members:
        return
    import torch

    with torch.no_grad():
        chosen = torch.as_tensor(members, device=next(iter(best.values())).device)
        for name, tensor in model.state_dict().items():  # every saved tensor of a stack has K first
            best[name].index_copy_(0, chosen, tensor.index_select(0, chosen))


class _AdamW:
    """AdamW with a learning rate and weight decay per member, fused: every trainable parameter (each with K
    members first) becomes a view into one (K, n) buffer, so a step is a dozen tensor operations whatever the
    number of layers.

    `step(stepping)` updates only the members that had rows in the step (their moments and step counts
    included); `freeze(done)` stops members for good.
    """

    def __init__(self, params: list["torch.Tensor"], lrs: list[float], decays: list[float],
                 device: "torch.device") -> None:
        import torch

        k = len(lrs)
        self.params = params
        sizes = [p[0].numel() for p in params]
        self.flat = torch.cat([p.detach().reshape(k, -1) for p in params], dim=1)
        offset = 0
        with torch.no_grad():
            for p, n in zip(params, sizes):  # the parameters now live in the flat buffer
                p.data = self.flat[:, offset:offset + n].view_as(p)
                offset += n
        self.sizes = sizes
        self.lr = torch.as_tensor(lrs, dtype=torch.float32, device=device).view(k, 1)
        self.decay = torch.as_tensor(decays, dtype=torch.float32, device=device).view(k, 1)
        self.live = torch.ones(k, 1, dtype=torch.bool, device=device)
        self.steps = torch.zeros(k, 1, dtype=torch.float32, device=device)
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)

    def freeze(self, done: list[bool]) -> None:
        import torch

        self.live &= ~torch.as_tensor(done, dtype=torch.bool, device=self.live.device).view(-1, 1)

    def step(self, stepping: "torch.Tensor") -> None:
        import torch

        b1, b2 = BETAS
        k = self.flat.shape[0]
        with torch.no_grad():
            grad = torch.cat([p.grad.reshape(k, -1) if p.grad is not None else torch.zeros(k, n, device=p.device)
                              for p, n in zip(self.params, self.sizes)], dim=1)
            go = (stepping.view(k, 1) & self.live).float()
            self.steps += go
            t = self.steps.clamp_min(1.0)
            # moments move only for members that stepped: a padded or stopped member's state is untouched
            self.m.mul_(1 - (1 - b1) * go).add_(grad * go, alpha=1 - b1)
            self.v.mul_(1 - (1 - b2) * go).addcmul_(grad * go, grad, value=1 - b2)
            self.flat.mul_(1 - self.lr * self.decay * go)
            denom = self.v.sqrt().div_(torch.sqrt(1 - b2 ** t)).add_(EPS)
            self.flat.addcdiv_(self.m * (self.lr * go / (1 - b1 ** t)), denom, value=-1.0)
