"""The data path of one task: prepare in the host process, train and evaluate where the search runs.

A `Pipeline` is split along the process boundary of the search:

- `prepare` runs once in the host process (pandas, scikit-learn; no torch). It loads and checks the table,
  splits it, fits preprocessing on the training rows only, and returns `Prepared`: plain numpy arrays plus a
  JSON-able `DataInfo` and the fitted state the predictor needs.
- Everything else runs where trials run (a worker process, or in-process): `to_device` turns the arrays into
  tensors that stay on the training device; `train_batches` yields index-slice batches; `loss` and
  `predict` define what training and evaluation mean for the task; `evaluate` computes metrics.

The host's tabular pipeline (`automl.tabular.pipeline`) serves binary, multiclass and regression. A plugin
with data of another shape (interactions, sequences) gives its `DomainSpec` a pipeline of its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

    from automl.config import RunConfig
    from automl.plugins import PluginHost
    from automl.specs import DataInfo, DomainSpec


@dataclass
class Prepared:
    """The handoff from `prepare` to the search. Arrays are numpy (they cross process boundaries)."""

    info: "DataInfo"
    arrays: dict[str, "np.ndarray"]
    train: "np.ndarray"
    val: "np.ndarray"
    test: "np.ndarray"
    #: (train_rows, val_rows) per fold when trials are scored by cross-validation.
    folds: Optional[list[tuple["np.ndarray", "np.ndarray"]]] = None
    #: Fitted state the predictor needs (preprocessing, classes...), saved by `save_predictor`.
    state: dict[str, Any] = field(default_factory=dict)
    #: Per-row side information for evaluation only (e.g. sensitive attributes), never trained on.
    side: dict[str, "np.ndarray"] = field(default_factory=dict)
    #: A short fingerprint of data and split: a study continued with other data is refused.
    fingerprint: str = ""

    def development_rows(self) -> "np.ndarray":
        """Train + validation rows, sorted: what cross-validation folds cover and a final refit uses."""
        import numpy as np

        return np.sort(np.concatenate([self.train, self.val]))


class Pipeline(ABC):
    """Abstract base of a task's data path; see the module docstring."""

    #: Name stored in the predictor so `automl.load` finds the pipeline again through the domain.
    name: str = "abstract"

    # -- host process ------------------------------------------------------------------------------------

    @abstractmethod
    def prepare(
        self, cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec", frame: "pd.DataFrame | None"
    ) -> Prepared:
        """Load, check, split and preprocess; return numpy arrays and metadata."""

    # -- where trials run --------------------------------------------------------------------------------

    def stopping_metric(self, info: "DataInfo") -> Optional[str]:
        """The metric early stopping watches (`trainer.stop_on=auto`); None: the search's objective."""
        return None

    @abstractmethod
    def training_space(self, trial: Any, info: "DataInfo") -> dict[str, Any]:
        """Training hyperparameters searched for every family (learning rate, batch size...)."""

    @abstractmethod
    def to_device(self, prepared: Prepared, device: "torch.device") -> dict[str, "torch.Tensor"]:
        """Tensors for training and evaluation, moved to `device` once."""

    @abstractmethod
    def train_batches(
        self, data: dict[str, "torch.Tensor"], rows: "torch.Tensor", batch_size: int, generator: "torch.Generator",
        model: Any,
    ) -> Iterator[Any]:
        """One epoch of training batches over `rows`, as index slices of a random permutation."""

    @abstractmethod
    def loss(self, net: "torch.nn.Module", batch: Any, params: dict[str, Any]) -> "torch.Tensor":
        """Training loss of a plain network on a batch (families that give `network=`)."""

    @abstractmethod
    def predict(self, model: Any, data: dict[str, "torch.Tensor"], rows: "torch.Tensor", batch_size: int) -> "np.ndarray":
        """Scores for `rows` in the form the metrics take (probabilities, values...)."""

    @abstractmethod
    def targets(self, prepared: Prepared, rows: "np.ndarray") -> "np.ndarray":
        """True targets for `rows`, in the form the metrics take."""

    def bag(self, members: list["torch.nn.Module"]) -> Optional["torch.nn.Module"]:
        """One model averaging the fold models of a cross-validated study, or None to refit on all rows instead.

        A pipeline that returns a module here must rebuild the same module in `load_predictor` (the predictor's
        metadata says how many members it has, under `bagged`).
        """
        return None

    # -- artifacts ---------------------------------------------------------------------------------------

    @abstractmethod
    def save_predictor(self, directory: str, prepared: Prepared, family: str, params: dict[str, Any],
                       state_dict: dict[str, "torch.Tensor"], extra: dict[str, Any]) -> None:
        """Write everything `load_predictor` needs: config JSON, fitted preprocessing, safetensors weights."""

    @abstractmethod
    def load_predictor(self, directory: str, meta: dict[str, Any], host: "PluginHost") -> Any:
        """Restore a predictor written by `save_predictor`."""
