"""The dynamic half of the contract check: real rows, real models, one training step each.

A `Bench` is one domain's dataset composed, prepared and moved to the CPU exactly as a run does it (Hydra
config, then the planning room: `resolve`, `Resolution.prepare`, `Resolution.plan`, then `Pipeline.bind`).
On a bench, each model family's search space is sampled for a few trials of an in-memory Optuna study (names
namespaced as the search does), each sampled model is built, trained ONE optimiser step on a real batch
(`DeviceData.batches` + `DeviceData.loss` for `network=` families, the module's own `training_step` for
`build=` families), asked for predictions on validation rows (`DeviceData.predict`, scored against
`DeviceData.targets`), and every metric of the domain is computed on them. The first model of each bench is
also saved and loaded back through the pipeline's `PredictorFormat`.

Everything goes through the generic pipeline contract and the specs' callables, so a domain with a pipeline
of its own (interactions, sequences) is checked like a table. A failure is recorded against the plugin that
owns the broken piece: the family for its search space, model and training step, the domain for its config,
data and pipeline, the metric for its function; when the piece at fault is the host's own (a built-in family
or metric), the domain that fed it is blamed instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from automl.host import BUILTIN

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import optuna
    import torch

    from automl.host import PluginHost
    from automl.pipeline import DeviceData, Pipeline, Prepared
    from automl.plan import Plan
    from automl.specs import DatasetSpec, DomainSpec, MetricSpec, ModelFamily

#: Validation rows a model predicts and the metrics score: a few, so that a family scoring every item of a
#: catalogue per row stays quick; more (up to MORE_EVAL_ROWS) when the few miss a class (a metric such as ROC
#: AUC is undefined without every class).
EVAL_ROWS, MORE_EVAL_ROWS, MAX_CLASSES = 64, 4096, 100


class ContractViolation(Exception):
    """A value of the wrong kind came back from a plugin's callable."""


class _Stop(Exception):
    """A stage failed and was recorded; the caller stops what depended on it."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


def _describe(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    reason = text if isinstance(exc, ContractViolation) else f"{type(exc).__name__}: {text}".rstrip(": ")
    return reason[:400]


def _plain(value: Any, what: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ContractViolation(f"{what} must hold plain JSON values (they are stored with the trial): {exc}") from None


@dataclass
class Bench:
    """One domain's dataset, prepared for the check and moved to the CPU."""

    domain: "DomainSpec"
    dataset: str
    pipeline: "Pipeline"
    prepared: "Prepared"
    plan: "Plan"
    data: "DeviceData"
    train_rows: "torch.Tensor"
    eval_rows: "torch.Tensor"
    y_eval: "np.ndarray"
    eval_batch_size: int
    study: "optuna.Study"
    #: Predictions of the first model that trained here, to score metrics that no domain lists.
    scores: Optional["np.ndarray"] = None
    #: The predictor format was exercised (a model saved and loaded back) on this bench.
    format_checked: bool = False

    @property
    def task(self) -> str:
        return self.prepared.info.task

    @property
    def label(self) -> str:
        return f"domain {self.domain.name!r} on dataset {self.dataset!r}"


@dataclass
class Workbench:
    """Opens benches on demand (once each) and exercises families and metrics on them.

    :param report: ``report(plugin, problem)`` records a problem against a plugin.
    :param configs: sampled configurations per family and bench; each one is built and trained one step.
    """

    host: "PluginHost"
    report: Callable[[str, str], None]
    seed: int = 0
    configs: int = 3
    exercised: dict[str, set[str]] = field(default_factory=lambda: {
        "domains": set(), "datasets": set(), "model_families": set(), "metrics": set()})
    #: Families and metrics that were run at least once, whether they passed or not.
    tried: set[tuple[str, str]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    _benches: dict[tuple[str, Optional[str]], Optional[Bench]] = field(default_factory=dict)

    # -- bookkeeping -------------------------------------------------------------------------------------

    def owner(self, kind: str, name: str) -> str:
        return self.host.registries[kind].owner(name)

    def _blame(self, kind: str, name: str, bench: Bench) -> str:
        owner = self.owner(kind, name)
        return self.owner("domains", bench.domain.name) if owner == BUILTIN else owner

    @contextlib.contextmanager
    def _stage(self, owner: str, what: str) -> Iterator[None]:
        try:
            yield
        except _Stop:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a plugin raises is its contract failure, recorded
            self.report(owner, f"{what}: {_describe(exc)}")
            raise _Stop from None

    # -- datasets ----------------------------------------------------------------------------------------

    def check_dataset(self, spec: "DatasetSpec") -> None:
        """The loader works offline and returns a table with the columns the spec names."""
        import pandas as pd

        try:
            with self._stage(self.owner("datasets", spec.name), f"dataset {spec.name!r}: loader()"):
                frame = spec.loader()
                _require(isinstance(frame, pd.DataFrame),
                         f"returned {type(frame).__name__}; expected a pandas DataFrame")
                _require(len(frame) > 0, "returned a table without rows")
                named = {"target": [spec.target], "id_columns": list(spec.id_columns),
                         "sensitive": list(spec.sensitive),
                         "group_column": [spec.group_column] if spec.group_column else []}
                columns = set(map(str, frame.columns))
                for what, wanted in named.items():
                    for column in (c for c in wanted if c not in columns):
                        raise ContractViolation(f"{what} names {column!r}, which is not a column of the table it "
                                                f"returns (columns: {', '.join(list(map(str, frame.columns))[:20])})")
        except _Stop:
            return
        self.exercised["datasets"].add(spec.name)

    # -- benches -----------------------------------------------------------------------------------------

    def bench(self, domain: "DomainSpec", dataset: Optional[str] = None) -> Optional[Bench]:
        """The domain prepared on `dataset` (default: its own default dataset), or None if that failed."""
        key = (domain.name, dataset)
        if key not in self._benches:
            try:
                self._benches[key] = self._open(domain, dataset)
            except _Stop:
                self._benches[key] = None
        return self._benches[key]

    def _open(self, domain: "DomainSpec", dataset: Optional[str]) -> Optional[Bench]:
        import numpy as np
        import optuna
        import torch

        from automl.compose import compose
        from automl.config import RunConfig
        from automl.pipeline import DataInfo, DeviceData, Pipeline, PredictorFormat, Prepared
        from automl.plan import resolve

        owner = self.owner("domains", domain.name)
        where = f"domain {domain.name!r}"
        # text at one short length: the check runs the plumbing, and encoding every row at 256 tokens costs minutes
        overrides = [f"domain={domain.name}", "search.n_workers=0", f"seed={self.seed}", "text.max_lengths=[16]"]
        with self._stage(owner, f"{where}: composing its Hydra config"):
            cfg = RunConfig.from_container(compose(self.host, overrides + ([f"dataset={dataset}"] if dataset else [])))
            _require(cfg.domain.name == domain.name,
                     f"it sets domain.name={cfg.domain.name!r}; expected {domain.name!r}")
        name = cfg.dataset or domain.default_dataset
        if not name:
            self.notes.append(f"{where} has no default_dataset: its pipeline was not run on data")
            return None
        where = f"domain {domain.name!r} on dataset {name!r}"
        with self._stage(owner, f"{where}: making its pipeline"):
            resolution = resolve(cfg, self.host)
            pipeline = resolution.pipeline
            _require(isinstance(pipeline, Pipeline),
                     f"pipeline() returned {type(pipeline).__name__}; expected an automl.pipeline.Pipeline")
            _require(isinstance(pipeline.predictor_format(), PredictorFormat),
                     "predictor_format() must return an automl.pipeline.PredictorFormat")
        with self._stage(owner, f"{where}: pipeline.prepare"):
            prepared = resolution.prepare(cfg, self.host)
            _require(isinstance(prepared, Prepared), f"returned {type(prepared).__name__}; expected Prepared")
            _require(isinstance(prepared.info, DataInfo),
                     f"Prepared.info is {type(prepared.info).__name__}; expected an automl.pipeline.DataInfo")
            _plain(dataclasses.asdict(prepared.info), "Prepared.info (saved inside the predictor)")
            rows = prepared.val if len(prepared.val) else (prepared.folds[0][1] if prepared.folds else prepared.test)
            _require(len(prepared.train) > 0 and len(rows) > 0, "it left no training or no validation rows")
        with self._stage(owner, f"{where}: planning the search"):
            plan = resolution.plan(cfg, self.host, prepared.info)
        with self._stage(owner, f"{where}: pipeline.bind / DeviceData.targets"):
            device = torch.device("cpu")
            data = pipeline.bind(prepared, device)
            _require(isinstance(data, DeviceData), f"bind() returned {type(data).__name__}; expected an "
                                                   "automl.pipeline.DeviceData")
            eval_rows = np.asarray(rows[:EVAL_ROWS])
            y_eval = data.targets(eval_rows)
            if len(rows) > EVAL_ROWS:
                y_more = data.targets(np.asarray(rows[:MORE_EVAL_ROWS]))
                classes = np.unique(np.asarray(y_more)).size
                if classes <= MAX_CLASSES and np.unique(np.asarray(y_eval)).size < classes:
                    eval_rows, y_eval = np.asarray(rows[:MORE_EVAL_ROWS]), y_more
        with _quiet_optuna():
            study = optuna.create_study(direction=plan.objective.direction,
                                        sampler=optuna.samplers.RandomSampler(seed=self.seed))
        return Bench(domain, name, pipeline, prepared, plan, data,
                     torch.as_tensor(prepared.train, dtype=torch.long, device=device),
                     torch.as_tensor(eval_rows, dtype=torch.long, device=device), y_eval,
                     cfg.trainer.eval_batch_size, study)

    def compatible_bench(self, tasks: frozenset[str], accepts: Optional[Callable[[Any], bool]] = None
                         ) -> Optional[Bench]:
        """A bench whose task is in `tasks` (and whose data `accepts` takes): an open one, else a new one on a
        domain's default dataset or on a dataset registered for a domain."""
        for bench in self._open_benches():
            if self._fits(bench, tasks, accepts):
                return bench
        candidates = [(d, None) for d in self.host.domains]
        candidates += [(self.host.domains.get(s.domain or "tabular"), s.name) for s in self.host.datasets
                       if (s.domain or "tabular") in self.host.domains and (s.task is None or s.task in tasks)]
        for domain, dataset in candidates:
            bench = self.bench(domain, dataset)
            if bench is not None and self._fits(bench, tasks, accepts):
                return bench
        return None

    def _open_benches(self) -> list[Bench]:
        return [b for b in self._benches.values() if b is not None]

    @staticmethod
    def _fits(bench: Bench, tasks: frozenset[str], accepts: Optional[Callable[[Any], bool]]) -> bool:
        if bench.task not in tasks:
            return False
        try:
            return accepts is None or bool(accepts(bench.prepared.info))
        except Exception:  # noqa: BLE001 - a raising accepts() is reported when the family is exercised
            return True

    # -- domains, families, metrics ----------------------------------------------------------------------

    def exercise_domain(self, domain: "DomainSpec") -> None:
        """The domain on its default dataset: every family it may search, every metric it reports."""
        bench = self.bench(domain)
        if bench is None:
            return
        self.exercised["domains"].add(domain.name)
        for family in bench.plan.families:
            self.exercise_family(bench, family)

    def exercise_family(self, bench: Bench, family: "ModelFamily") -> None:
        """Sample `configs` configurations of the family, build each, train it one step, predict, score."""
        self.tried.add(("model_families", family.name))
        for index in range(self.configs):
            scores = self._one_configuration(bench, family, index)
            if scores is None:
                return  # recorded; the next configurations would most likely fail the same way
            if bench.scores is None:
                bench.scores = scores
            for metric in bench.plan.metrics:
                self.exercise_metric(bench, metric, scores)
        self.exercised["model_families"].add(family.name)

    def exercise_metric(self, bench: Bench, metric: "MetricSpec", scores: "np.ndarray") -> None:
        import math

        self.tried.add(("metrics", metric.name))
        try:
            with self._stage(self._blame("metrics", metric.name, bench),
                             f"metric {metric.name!r} on predictions of {bench.label}"):
                value = metric.fn(bench.y_eval, scores)
                _require(isinstance(value, (int, float)) or getattr(value, "ndim", 1) == 0,
                         f"returned {type(value).__name__}; expected a number")
                float(value)
        except _Stop:
            return
        if not math.isnan(float(value)):
            self.exercised["metrics"].add(metric.name)

    def _one_configuration(self, bench: Bench, family: "ModelFamily", index: int) -> Optional["np.ndarray"]:
        import numpy as np
        import torch

        from automl.search.context import FamilyTrial

        info, pipeline = bench.prepared.info, bench.pipeline
        family_owner, domain_owner = self.owner("model_families", family.name), self.owner("domains", bench.domain.name)
        blame = self._blame("model_families", family.name, bench)
        where = f"model family {family.name!r} on {bench.label}"
        trial = bench.study.ask()
        try:
            with self._stage(family_owner, f"{where}: search_space(trial, info)"):
                params = family.search_space(FamilyTrial(trial, family.name), info)
                _require(isinstance(params, dict), f"returned {type(params).__name__}; expected a dict")
                _plain(params, "the parameters")
            with self._stage(domain_owner, f"{bench.label}: pipeline.training_space(trial, info)"):
                hp = pipeline.training_space(trial, info)
                _require(isinstance(hp, dict) and "batch_size" in hp, "it must return a dict with 'batch_size'")
                _require(family.network is None or "lr" in hp, "it must return 'lr' for network= families")
                _plain(hp, "the training hyperparameters")
            with self._stage(family_owner, f"{where}: building the model for {json.dumps(params)[:160]}"):
                torch.manual_seed(self.seed + index)
                model = _build(family, params, info)
            with self._stage(domain_owner, f"{bench.label}: DeviceData.batches"):
                generator = torch.Generator().manual_seed(self.seed + index)
                batch = next(iter(bench.data.batches(bench.train_rows, int(hp["batch_size"]), generator, model)),
                             None)
                _require(batch is not None, "it yielded no batch from the training rows")
            with self._stage(blame, f"{where}: one training step"):
                train_one_step(model, bench.data, batch, hp)
            with self._stage(blame, f"{where}: DeviceData.predict on {len(bench.eval_rows)} validation rows"):
                scores = bench.data.predict(model, bench.eval_rows, bench.eval_batch_size)
                _require(isinstance(scores, np.ndarray), f"returned {type(scores).__name__}; expected a numpy array")
                _require(scores.size > 0 and np.issubdtype(scores.dtype, np.number) and bool(np.isfinite(scores).all()),
                         "the predictions are empty, not numbers, or not finite")
            if family.stack is not None:
                with self._stage(blame, f"{where}: stack([params, params]) against network(params)"):
                    self._check_stack(bench, family, params, model)
            if not bench.format_checked and family.network is not None:
                with self._stage(domain_owner, f"{bench.label}: PredictorFormat.save and load"):
                    bench.format_checked = True
                    self._round_trip(bench, family, params, hp, model)
        except _Stop:
            return None
        return scores

    def _check_stack(self, bench: Bench, family: "ModelFamily", params: dict, model: Any) -> None:
        """A stack of two copies of the configuration: each member, sliced out, loads into the network of its
        parameters, and predicts what that network predicts."""
        import numpy as np

        from automl.tabular.stacked import member_state

        stacked_predict = getattr(bench.data, "stacked_predict", None)
        _require(callable(stacked_predict), "the family stacks, but the domain's device data has no "
                                            "stacked_predict (automl.training.vectorised.StackedData)")
        stack = family.stack([params, params], bench.prepared.info)
        single = family.network(params, bench.prepared.info)
        single.load_state_dict(member_state(stack, 1))  # strict: the member's names and shapes are the network's
        together = stacked_predict(stack, [bench.eval_rows, bench.eval_rows], bench.eval_batch_size)[1]
        alone = bench.data.predict(single, bench.eval_rows, bench.eval_batch_size)
        _require(np.allclose(together, alone, atol=1e-4), "a member of the stack predicts differently from the "
                                                          "network built from its parameters")

    def _round_trip(self, bench: Bench, family: "ModelFamily", params: dict, hp: dict, model: Any) -> None:
        """Save a trained network through the pipeline's format, load it back: the loaded model's weights
        must be the saved ones."""
        import tempfile
        from pathlib import Path

        import torch

        from automl.records import Member, PredictorMeta

        fmt = bench.pipeline.predictor_format()
        meta = PredictorMeta(pipeline=bench.pipeline.name, domain=bench.domain.name, task=bench.task,
                             info=dataclasses.asdict(bench.prepared.info), objective=bench.plan.objective.name,
                             members=[Member(trial=0, family=family.name, params=params, hp=hp)])
        with tempfile.TemporaryDirectory(prefix="automl-check-") as folder:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            fmt.save(Path(folder), bench.prepared, meta, state)
            loaded = fmt.load(Path(folder), meta, self.host.model_families.get)
            _require(loaded is not None, "load() returned None")
            module = next((v for v in vars(loaded).values() if isinstance(v, torch.nn.Module)), None)
            if module is not None:
                restored = module.state_dict()
                _require(all(torch.equal(restored[k].cpu(), v.cpu()) for k, v in state.items() if k in restored),
                         "the loaded model's weights differ from the saved ones")


def _build(family: "ModelFamily", params: dict, info: Any) -> Any:
    import torch

    from automl.training.fast import is_lightning_module

    if family.network is not None:
        model = family.network(params, info)
        _require(isinstance(model, torch.nn.Module), f"network() returned {type(model).__name__}; "
                                                     "expected a torch.nn.Module")
    else:
        model = family.build(params, info)
        _require(is_lightning_module(model), f"build() returned {type(model).__name__}; "
                                             "expected a lightning.LightningModule")
    return model.to(torch.device("cpu"))


def train_one_step(model: Any, data: "DeviceData", batch: Any, hp: dict) -> None:
    """One optimiser step as the fast engine takes it; the loss must be a finite scalar that moves weights."""
    import torch

    from automl.training.engine import make_optimizer
    from automl.training.fast import is_lightning_module, lightning_optimizer, training_loss

    model.train()
    optimizer = lightning_optimizer(model)[0] if is_lightning_module(model) else \
        make_optimizer(model.parameters(), hp)
    loss = training_loss(model, data, batch, 0, hp)
    _require(torch.is_tensor(loss) and loss.numel() == 1, f"the loss must be a scalar tensor, got {type(loss).__name__}"
             + (f" of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else ""))
    _require(bool(torch.isfinite(loss.detach()).all()), f"the loss is {float(loss.detach())}")
    _require(loss.requires_grad, "the loss does not depend on the model's parameters")
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    _require(any(not torch.equal(b, p.detach()) for b, p in zip(before, trainable)),
             "one optimiser step changed no parameter")


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every study it creates; the check's in-memory studies are not news."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)
