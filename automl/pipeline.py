"""The pipeline contract: how a task's data travels from a table to trained models and a saved predictor.

A domain's `Pipeline` has three small parts, one per phase of a run:

- **preparation** (`Pipeline.prepare`, in the host process: pandas, scikit-learn, no torch). The host has
  already resolved the data source into a `Table` (a DataFrame plus what the dataset spec and the config say
  about it); the pipeline checks it, splits it, fits preprocessing on the training rows only, and returns
  `Prepared`: plain numpy arrays, a JSON-able `DataInfo` and the fitted state the predictor needs.
  `training_space` and `stopping_metric` say what the search tunes and what early stopping watches.
- **device data** (`Pipeline.bind` returns a `DeviceData`, where trials run): the prepared arrays as
  tensors on the training device, once; it owns training batches, the loss of a plain network, predictions
  and targets. Nothing is stored on the pipeline itself.
- **predictor format** (`Pipeline.predictor_format` returns a `PredictorFormat`): `save` writes the final
  model as data (JSON, safetensors), `load` rebuilds it, `combine` averages several models (fold models, an
  ensemble's members) into one module that `load` rebuilds the same way.

The host's tabular pipeline (`automl.tabular.pipeline`) serves binary, multiclass and regression. A plugin
with data of another shape (interactions, sequences) gives its `DomainSpec` a pipeline of its own;
`automl.testing.check_plugin` exercises every method named here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

    from automl.config import RunConfig
    from automl.records import DataSummary, PredictorMeta


class BuildsModels(Protocol):
    """What a predictor format needs of a model family: the untrained model for some parameters
    (`automl.specs.ModelFamily.create`)."""

    def create(self, params: dict[str, Any], info: "DataInfo") -> Any: ...


#: Finds an installed model family by name (`PluginHost.model_families.get`); a missing one raises.
FamilyLookup = Callable[[str], BuildsModels]


@dataclass(frozen=True)
class DataInfo:
    """What a model family may know about the prepared data: shapes, not rows.

    Pipelines subclass it (the tabular pipeline adds feature counts and category cardinalities). It is saved
    as JSON inside the predictor, so fields hold plain values only.
    """

    task: str
    n_train: int


@dataclass
class Table:
    """A run's data source, resolved by the host: the raw frame and what the dataset spec or config say.

    `target` is None when nobody named one (a pipeline that needs one says so). `drop_columns` maps each
    column to remove to the reason; `id_columns` are identifiers (never a feature, never written out);
    `sensitive` attributes are reported on and not learned unless `sensitive_is_feature`.
    """

    frame: "pd.DataFrame"
    name: str
    target: Optional[str] = None
    #: The registered dataset this table comes from, or None for a file or a DataFrame of the user's.
    dataset: Optional[str] = None
    task: Optional[str] = None
    positive_class: Any = None
    drop_columns: dict[str, str] = field(default_factory=dict)
    id_columns: list[str] = field(default_factory=list)
    sensitive: list[str] = field(default_factory=list)
    sensitive_is_feature: bool = False
    group_column: Optional[str] = None


@dataclass
class Prepared:
    """The hand-off from `prepare` to the search. Arrays are numpy (they cross process boundaries)."""

    info: DataInfo
    arrays: dict[str, "np.ndarray"]
    train: "np.ndarray"
    val: "np.ndarray"
    test: "np.ndarray"
    #: (train_rows, val_rows) per fold when trials are scored by cross-validation.
    folds: Optional[list[tuple["np.ndarray", "np.ndarray"]]] = None
    #: Fitted state the predictor format needs (preprocessing, classes...).
    state: dict[str, Any] = field(default_factory=dict)
    #: Per-row side information for evaluation only (e.g. sensitive attributes), never trained on.
    side: dict[str, "np.ndarray"] = field(default_factory=dict)
    #: A short fingerprint of data and split: a study continued with other data is refused.
    fingerprint: str = ""
    #: What the data was (source, shape, what was left out and why, the split), for run.json.
    summary: Optional["DataSummary"] = None

    def development_rows(self) -> "np.ndarray":
        """Train + validation rows, sorted: what cross-validation folds cover and a final refit uses."""
        import numpy as np

        return np.sort(np.concatenate([self.train, self.val]))


class DeviceData(ABC):
    """Prepared data bound to a training device: batches, loss, predictions, targets.

    Built once per search process by `Pipeline.bind`; every method takes row indices (a long tensor on the
    device, or a numpy array for `targets`) into the prepared arrays.
    """

    def __init__(self, prepared: Prepared, device: "torch.device") -> None:
        self.prepared, self.device = prepared, device

    @abstractmethod
    def batches(self, rows: "torch.Tensor", batch_size: int, generator: "torch.Generator",
                model: Any) -> Iterator[Any]:
        """One epoch of training batches over `rows`, as index slices of a random permutation."""

    @abstractmethod
    def loss(self, net: "torch.nn.Module", batch: Any, hp: dict[str, Any]) -> "torch.Tensor":
        """Training loss of a plain network on a batch (families that give `network=`)."""

    @abstractmethod
    def predict(self, model: Any, rows: "torch.Tensor", batch_size: int) -> "np.ndarray":
        """Scores for `rows` in the form the metrics take (probabilities, values...)."""

    @abstractmethod
    def targets(self, rows: "np.ndarray") -> "np.ndarray":
        """True targets for `rows`, in the form the metrics take."""

    def fit_inputs(self, model: Any, rows: "torch.Tensor", member: int = 0) -> None:
        """Fill a model's data-dependent buffers (quantiles, bins) from its training `rows` before it trains, for
        models that have them (`model.fit_inputs`); `member` is the member of a stacked model. Default: none."""


class PredictorFormat(ABC):
    """How a pipeline's final model is saved as data and rebuilt (no pickled code)."""

    #: Why this format does not average several models (the final model is then the best trial alone, and a
    #: cross-validated study refits it), or None when `combine` averages them.
    declines_averaging: Optional[str] = "it does not average models"

    @abstractmethod
    def save(self, directory: Path, prepared: Prepared, meta: "PredictorMeta",
             state_dict: dict[str, "torch.Tensor"]) -> None:
        """Write what `load` needs: `meta` as predictor.json, fitted preprocessing, safetensors weights."""

    @abstractmethod
    def load(self, directory: Path, meta: "PredictorMeta", families: FamilyLookup) -> Any:
        """Rebuild the predictor written by `save`; `families` finds the installed model families by name."""

    def combine(self, models: list["torch.nn.Module"], weights: list[float],
                info: DataInfo) -> Optional["torch.nn.Module"]:
        """One module averaging `models` (fold models, ensemble members) with `weights`, or None when this
        pipeline cannot average models (a cross-validated study then refits one model on all rows)."""
        return None


class Pipeline(ABC):
    """A task's data path: preparation here, `DeviceData` where trials run, a `PredictorFormat` at the end."""

    #: Stored in the predictor so that `automl.load` finds the pipeline again through the domain.
    name: str = "abstract"
    #: Whether the final model's members may train once more on all development rows after a single-split search
    #: (`search.ensemble.refit`): true where validation rows are ordinary rows, false where they are held out by
    #: construction (each user's next interaction).
    refits: bool = False

    @abstractmethod
    def prepare(self, table: Table, cfg: "RunConfig") -> Prepared:
        """Check, split and preprocess the host's table; return numpy arrays and metadata."""

    @abstractmethod
    def training_space(self, trial: Any, info: DataInfo) -> dict[str, Any]:
        """Training hyperparameters searched for every family (learning rate, batch size...)."""

    def stopping_metric(self, info: DataInfo) -> Optional[str]:
        """The metric early stopping watches (`trainer.stop_on=auto`); None: the search's objective."""
        return None

    @abstractmethod
    def bind(self, prepared: Prepared, device: "torch.device") -> DeviceData:
        """The prepared arrays as tensors on `device`, with batches, loss, predictions and targets."""

    @abstractmethod
    def predictor_format(self) -> PredictorFormat:
        """How this pipeline's predictor is saved and loaded."""


def predict_in_batches(model: Any, rows: "torch.Tensor", batch_size: int,
                       score: "Callable[[Any, torch.Tensor], torch.Tensor]") -> list["torch.Tensor"]:
    """`score(model, chunk)` over `rows` in chunks of `batch_size`, in eval and inference mode; the model's
    training mode is restored afterwards. Returns the chunks' outputs (as float tensors), in order."""
    import torch

    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                outs.append(score(model, rows[start:start + batch_size]).float())
    finally:
        model.train(was_training)
    return outs


def assemble(fmt: PredictorFormat, meta: "PredictorMeta", info: DataInfo, families: FamilyLookup) -> Any:
    """The untrained module a predictor's metadata describes, built the way the final model was combined:
    each member is its family's network (its fold models combined when it has folds), and several members
    are combined with their weights. `state_dict` names then match what was saved."""
    models = []
    for member in meta.members:
        family = families(member.family)
        if member.folds:
            folds = [family.create(member.params, info) for _ in range(member.folds)]
            models.append(fmt.combine(folds, [1.0] * member.folds, info))
        else:
            models.append(family.create(member.params, info))
    if len(models) == 1:
        return models[0]
    return fmt.combine(models, [m.weight for m in meta.members], info)
