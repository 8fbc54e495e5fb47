"""Differentially private training: DP-SGD with Opacus (`privacy.epsilon=E`, `privacy.delta`).

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016): every step samples a batch by
Poisson sampling (each training row independently with probability q), clips each row's gradient to a norm C
(searched: `max_grad_norm`), sums, adds Gaussian noise of standard deviation sigma * C and takes an optimiser
step. Opacus (Yousefpour et al., "Opacus: User-Friendly Differential Privacy Library in PyTorch", 2021) does the
clipping, the noise and the optimiser step (`opacus.optimizers.DPOptimizer`, wrapping the host's AdamW) and the
accounting (`opacus.accountants.RDPAccountant`; sigma from `get_noise_multiplier` for the whole planned run,
`trainer.max_epochs` epochs of ceil(n / batch size) steps, so that the run is (E, delta)-DP with respect to the
training rows; early stopping can only spend less, and the accountant's figure for the steps actually taken is
what a trial records).

Per-row gradients: the host's networks are stacked modules (`automl.tabular.stacked`, a leading member
dimension even for one network), whose activations are not batch-first, so Opacus's layer hooks cannot see
rows. Each row's gradient is computed instead with `torch.func` (vmap of grad over the rows, each row a batch of
one: the "functorch" way Opacus itself uses for layers it has no hook for) and handed to `DPOptimizer` as
`p.grad_sample`; clipping, noise and accounting are Opacus's own. `tests/test_privacy.py` checks these
gradients against Opacus's `GradSampleModule` on a network it supports.

What this does not cover (stated in metrics.json and the model card): validation and test rows are not
protected (early stopping, the choice among trials, calibration and the threshold use them); the search trains
many models on the same training rows, so the released model *with its selection* is bounded by the
composition over every trial (`search_accounting`), not by E; the preprocessing fitted on the training rows
(medians, scales, the categories seen at least twice) and the class weights (class counts) are not private.
Data-dependent input maps of the networks (quantile knots, piecewise-linear bins) are fitted on a public
reference sample (standard normal values) instead of the training rows (`public_inputs`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional

from automl.errors import AutoMLError, ConfigError
from automl.training.engine import (CHECK_EVERY, Diverged, EpochJudge, FitRequest, FitResult, all_finite,
                                    make_optimizer, snapshot)

if TYPE_CHECKING:  # pragma: no cover
    import torch


log = logging.getLogger(__name__)

#: The accountant (Renyi DP, Mironov 2017, as Abadi et al.'s moments accountant generalised).
ACCOUNTANT = "rdp"
#: Renyi orders the accountant tries: Opacus's defaults and higher ones, which small epsilons need (at order a the
#: conversion to (epsilon, delta) costs log(1 / delta) / (a - 1), so the defaults' 63 cannot reach epsilon < ~0.2).
ALPHAS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 160, 192, 256])
#: The searched per-row clipping norm C: its name among the training hyperparameters and its (log) range.
CLIP = "max_grad_norm"
CLIP_RANGE = (0.05, 5.0)
#: C where a caller gives none (a direct `fit_private` call).
DEFAULT_CLIP = 1.0
MECHANISM = ("DP-SGD (Abadi et al. 2016) with Opacus (Yousefpour et al. 2021): Poisson-sampled batches, per-row "
             "gradient clipping, Gaussian noise; Renyi-DP accountant")
NOT_COVERED = (
    "validation rows: early stopping, the choice among trials, calibration and the decision threshold use them, "
    "without noise",
    "test rows: the reported test metrics are computed on them as they are",
    "the preprocessing fitted on the training rows (imputation medians, scales, the categories seen at least "
    "twice, which preprocessing.json lists) and the class weights (training class counts)",
    "the selection among trials, taken alone: every trial trained on the same rows, so the model's own epsilon "
    "does not include the choice among them; the search's composed epsilon does",
    "the noise comes from torch's seeded generator, not a cryptographically secure one (Opacus secure_mode)",
)


class PrivacyUnsupported(AutoMLError):
    """A model (or pipeline) that DP-SGD cannot train here; the message says why."""


@dataclass(frozen=True)
class Privacy:
    """The (epsilon, delta) every fit of a run is calibrated to; delta defaults to 1 / training rows."""

    epsilon: float
    delta: float

    @classmethod
    def of(cls, epsilon: Optional[float], delta: Optional[float], n_train: int) -> Optional["Privacy"]:
        if epsilon is None:
            return None
        return cls(float(epsilon), float(delta) if delta is not None else 1.0 / max(1, int(n_train)))


@dataclass(frozen=True)
class NoisePlan:
    """Sampling rate, steps and noise multiplier of one fit, fixed before it starts."""

    sample_rate: float
    steps_per_epoch: int
    steps: int
    noise_multiplier: float

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """The whole planned run as an accountant's history entry."""
        return [(self.noise_multiplier, self.sample_rate, self.steps)]


def settings(privacy: Any, engine: str, n_train: int) -> Optional[Privacy]:
    """The run's privacy settings (`RunConfig.privacy`) for a fit, or None; one-line errors where DP-SGD cannot
    apply."""
    if privacy.epsilon is None:
        return None
    if engine != "fast":
        raise ConfigError(f"privacy.epsilon trains with the fast engine's DP-SGD loop: set trainer.engine=fast "
                          f"(got {engine})")
    import importlib.util

    if importlib.util.find_spec("opacus") is None:
        raise ConfigError("privacy.epsilon needs Opacus, which is not installed: pip install 'vertical-automl[privacy]'")
    return Privacy.of(privacy.epsilon, privacy.delta, n_train)


def plan_noise(privacy: Privacy, n_rows: int, batch_size: int, epochs: int) -> NoisePlan:
    """Poisson sampling at q = 1 / ceil(n / batch size) (on average a batch of `batch_size`, as Opacus's
    DPDataLoader samples), for `epochs` epochs; sigma is the smallest the accountant finds for (epsilon, delta)."""
    steps_per_epoch = max(1, math.ceil(n_rows / max(1, int(batch_size))))
    q = 1.0 / steps_per_epoch
    steps = max(1, int(epochs)) * steps_per_epoch
    return NoisePlan(q, steps_per_epoch, steps, noise_multiplier(privacy.epsilon, privacy.delta, q, steps))


@functools.lru_cache(maxsize=64)
def noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """Opacus's calibration (a binary search over sigma with its accountant); trials of a run share it."""
    from opacus.accountants.utils import get_noise_multiplier

    with _quiet():
        try:
            return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                              steps=steps, accountant=ACCOUNTANT, alphas=list(ALPHAS)))
        except ValueError as exc:  # "The privacy budget is too low": no sigma reaches it
            raise ConfigError(f"privacy.epsilon={epsilon:g} cannot be reached with delta={delta:g} over {steps} "
                              f"steps ({exc}): raise privacy.epsilon or lower trainer.max_epochs") from None


def epsilon_of(history: list[tuple[float, float, int]], delta: float) -> float:
    """The epsilon at `delta` of a composition of DP-SGD runs [(sigma, q, steps), ...], by the RDP accountant."""
    from opacus.accountants import RDPAccountant

    if not history:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = list(history)
    with _quiet():
        return float(accountant.get_epsilon(delta=delta, alphas=list(ALPHAS)))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Opacus warns when the best Renyi order is the largest it tries: the bound is then looser, still valid."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")
        yield


# -- which networks DP-SGD can train ---------------------------------------------------------------------------


def check_network(net: Any) -> None:
    """Raise `PrivacyUnsupported` for a module whose rows are not independent or that trains its own way.

    Opacus's validators (`opacus.validators.ModuleValidator`) name the layers it cannot make private: BatchNorm
    mixes the rows of a batch (a row's gradient is not its own), running statistics are updated without noise.
    Its complaint about `nn.MultiheadAttention` concerns its own layer hooks, which this module does not use
    (torch.func differentiates attention row by row), so that one is not held against a network.
    """
    import torch
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    if hasattr(net, "training_step"):
        raise PrivacyUnsupported(f"{type(net).__name__} brings its own training_step (a `build=` family): DP-SGD "
                                 "needs each row's loss under the host's objective (give the family `network=`)")
    problems = []
    was_training = net.training
    net.train()
    try:
        for name, module in trainable_modules(net):
            if isinstance(module, torch.nn.MultiheadAttention):
                continue
            validator = ModuleValidator.VALIDATORS.get(type(module))
            problems += [f"{type(module).__name__} at {name!r}: {str(e).splitlines()[0]}"
                         for e in (validator(module) if validator else [])]
        for name, module in net.named_modules():  # norms without trainable parameters still mix rows
            if isinstance(module, torch.nn.modules.batchnorm._NormBase) and not any(
                    True for _ in module.parameters(recurse=False)) and (
                    module.track_running_stats or isinstance(module, torch.nn.modules.batchnorm._BatchNorm)):
                problems.append(f"{type(module).__name__} at {name!r} mixes the rows of a batch")
    finally:
        net.train(was_training)
    if problems:
        raise PrivacyUnsupported(f"Opacus cannot make {type(net).__name__} private: {problems[0]}"
                                 + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def _row_batches(data: Any) -> Any:
    """The data's batch of arbitrary rows (a tuple of row-first tensors); the tabular pipeline has one."""
    fn = getattr(data, "stacked_batch", None)
    if not callable(fn):
        raise PrivacyUnsupported(f"{type(data).__name__} has no batch of arbitrary rows (`stacked_batch`), which "
                                 "Poisson sampling needs: DP-SGD supports the tabular pipeline")
    return fn


class _RowLoss:
    """Each row's loss and gradient, by torch.func: vmap over the rows of grad of the loss of a batch of one."""

    def __init__(self, net: Any, data: Any, hp: dict[str, Any]) -> None:
        import torch

        class Loss(torch.nn.Module):  # forward = the device data's training loss, so functional_call can swap weights
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, *batch: Any) -> Any:
                return data.loss(self.net, batch, hp)

        self.module = Loss()
        self.named = [(f"net.{k}", p) for k, p in net.named_parameters() if p.requires_grad]
        self.buffers = {f"net.{k}": b for k, b in net.named_buffers()}

    def __call__(self, batch: tuple) -> tuple[dict[str, "torch.Tensor"], "torch.Tensor"]:
        from torch.func import functional_call, grad_and_value, vmap

        module, buffers = self.module, self.buffers

        def row_loss(params: dict, row: tuple) -> Any:
            return functional_call(module, (params, buffers), tuple(t.unsqueeze(0) for t in row))

        params = {k: p.detach() for k, p in self.named}
        # "different": each row draws its own dropout mask, as it would in a batch
        return vmap(grad_and_value(row_loss), in_dims=(None, 0), randomness="different")(params, tuple(batch))

    def assign(self, grads: Optional[dict[str, "torch.Tensor"]]) -> None:
        """Hand the per-row gradients to Opacus (`p.grad_sample`); None: an empty Poisson batch."""
        for key, p in self.named:
            p.grad_sample = grads[key] if grads is not None else p.new_zeros((0, *p.shape))


def probe(net: Any, data: Any, rows: "torch.Tensor", hp: dict[str, Any]) -> None:
    """Decline a network DP-SGD cannot train (`check_network`), or whose per-row gradients torch.func cannot
    compute, on two training rows."""
    check_network(net)
    batch = _row_batches(data)(rows[:2])
    try:
        _RowLoss(net, data, hp)(batch)
    except Exception as exc:  # noqa: BLE001 - any failure here is the reason the family is left out
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise PrivacyUnsupported(f"per-row gradients of {type(net).__name__} cannot be computed ({first})") from None


#: Rows of the public reference sample that data-dependent input maps are fitted on under privacy.
REFERENCE_ROWS = 4096


def public_inputs(net: Any, data: Any) -> None:
    """Fit a network's data-dependent input maps (quantile knots, piecewise-linear bins: `fit_inputs`) on a
    public reference sample instead of the training rows, whose quantiles are training values: standard normal
    values with a fixed seed, as the preprocessing presents every numeric column standardised."""
    import torch

    fit, x_num = getattr(net, "fit_inputs", None), getattr(data, "x_num", None)
    if not callable(fit) or not isinstance(x_num, torch.Tensor) or x_num.dim() != 2:
        return
    sample = torch.randn(REFERENCE_ROWS, x_num.shape[1], generator=torch.Generator().manual_seed(0))
    fit(sample.to(device=x_num.device, dtype=x_num.dtype), 0)


# -- one private fit ---------------------------------------------------------------------------------------------


@dataclass
class PrivateFitResult(FitResult):
    #: The fit's accounting: spent epsilon (accountant, steps taken), delta, the budget, sigma, q, steps, C.
    privacy: dict[str, Any] = field(default_factory=dict)


def fit_private(r: FitRequest) -> PrivateFitResult:
    """DP-SGD with early stopping, as `FastEngine.fit` trains (same judge, reports, checks), with Poisson
    batches of row indices, per-row clipping and noise by Opacus's `DPOptimizer`, and its accountant."""
    import torch
    from opacus.accountants import RDPAccountant
    from opacus.optimizers import DPOptimizer

    privacy: Privacy = r.privacy
    model, trainer = r.model, r.trainer
    start, clock = time.perf_counter(), time.perf_counter
    check_network(model)
    batch_of = _row_batches(r.data)
    device = r.train.device
    model.to(device)
    n = int(r.train.shape[0])
    plan = plan_noise(privacy, n, int(r.hp["batch_size"]), trainer.max_epochs)
    clip = float(r.hp.get(CLIP, DEFAULT_CLIP))
    sampler = torch.Generator(device=device).manual_seed(r.seed)
    noise = torch.Generator(device=device).manual_seed(r.seed + 7919)  # its own stream: noise never replays sampling
    opt = DPOptimizer(make_optimizer(model.parameters(), r.hp), noise_multiplier=plan.noise_multiplier,
                      max_grad_norm=clip, expected_batch_size=max(1, round(n * plan.sample_rate)),
                      loss_reduction="mean", generator=noise)
    accountant = RDPAccountant()
    opt.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=plan.sample_rate))
    rows = _RowLoss(model, r.data, r.hp)
    judge, best_state, compute_s = EpochJudge(r.objective, r.stopper, trainer.patience), None, 0.0

    for epoch in range(1, trainer.max_epochs + 1):
        model.train()
        total, count = torch.zeros((), device=device), 0
        for i in range(plan.steps_per_epoch):
            if r.check is not None and i % CHECK_EVERY == 0:
                r.check(epoch, i, plan.steps_per_epoch)
            t0 = clock()
            # Poisson sampling, as the accountant assumes: each row joins this step's batch with probability q
            idx = r.train[torch.rand(n, generator=sampler, device=device) < plan.sample_rate]
            if len(idx):
                grads, losses = rows(batch_of(idx))
                rows.assign(grads)
                total += losses.detach().sum()
                count += len(idx)
            else:
                rows.assign(None)  # an empty batch still takes its noisy step: the accountant counts it
            opt.step()
            opt.zero_grad(set_to_none=True)
            compute_s += clock() - t0
        if not math.isfinite(float(total)):
            raise Diverged(f"training loss became {float(total)} in epoch {epoch}")
        scores = r.data.predict(model, r.val, trainer.eval_batch_size)
        if not all_finite(scores):
            raise Diverged(f"validation predictions are not finite in epoch {epoch}")
        if judge.update(epoch, r.y_val, scores):
            best_state = snapshot(model)
        if r.report is not None:
            r.report(epoch - 1, judge.history[-1])
        if judge.done:
            break
    best, best_epoch, history = judge.value, judge.best_epoch, judge.history
    if r.keep_last:
        best, best_epoch, best_state = history[-1], len(history), snapshot(model)
    assert best_state is not None
    steps = sum(s for _, _, s in accountant.history)
    spent = epsilon_of(accountant.history, privacy.delta)
    accounting = {"epsilon": round(spent, 4), "delta": privacy.delta, "epsilon_budget": privacy.epsilon,
                  "noise_multiplier": round(plan.noise_multiplier, 6), "sample_rate": plan.sample_rate,
                  "steps": steps, "planned_steps": plan.steps, CLIP: clip, "accountant": ACCOUNTANT}
    return PrivateFitResult(best, best_epoch, len(history), best_state, history, clock() - start, compute_s,
                            privacy=accounting)


def _version(dist: str) -> Optional[str]:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
