"""The saved tabular model: predictor.json, preprocessing JSON, safetensors weights. No pickled code.

`TabularFormat` writes and reads the files; `automl.load(run_dir)` returns a `TabularPredictor`, whose
`predict(df)` and `predict_proba(df)` take raw rows (the target column may be present or not) and apply the
preprocessing fitted during the run, the network (or the average of several), the calibration and the
decision threshold the domain chose.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import AutoMLError
from automl.pipeline import PredictorFormat, assemble
from automl.records import PredictorMeta
from automl.tabular.families import TabularInfo
from automl.tasks import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

    from automl.pipeline import DataInfo, FamilyLookup, Prepared

META, WEIGHTS, PREPROCESSING = "predictor.json", "model.safetensors", "preprocessing.json"


def _plain(value: Any) -> Any:
    """numpy scalars to Python, so class labels survive JSON."""
    return value.item() if hasattr(value, "item") else value


class TabularFormat(PredictorFormat):
    def save(self, directory: Path, prepared: "Prepared", meta: PredictorMeta,
             state_dict: dict[str, "torch.Tensor"]) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        st = prepared.state
        meta.data = {
            "target": st["target"],
            "classes": [_plain(c) for c in st["classes"]] if st["classes"] is not None else None,
            "positive_class": _plain(st["positive_class"]),
            "columns": st["columns"],
            "y_mean": st.get("y_mean"),
            "y_std": st.get("y_std"),
        }
        (directory / META).write_text(json.dumps(meta.to_json(), indent=2, default=str))
        save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(directory / WEIGHTS))
        (directory / PREPROCESSING).write_text(json.dumps(st["preprocessor"].state))

    def load(self, directory: Path, meta: PredictorMeta, families: "FamilyLookup") -> "TabularPredictor":
        from safetensors.torch import load_file

        from automl.tabular.preprocessing import TabularPreprocessor

        fields = dict(meta.info)
        fields["cardinalities"] = tuple(fields.get("cardinalities", ()))
        model = assemble(self, meta, TabularInfo(**fields), families)
        model.load_state_dict(load_file(str(directory / WEIGHTS)))
        preprocessor = TabularPreprocessor.from_state(json.loads((directory / PREPROCESSING).read_text()))
        return TabularPredictor(meta, preprocessor, model)

    def combine(self, models: list["torch.nn.Module"], weights: list[float],
                info: "DataInfo") -> "torch.nn.Module":
        from automl.tabular.averaging import WeightedAverage

        return WeightedAverage(models, info.task, weights)


class TabularPredictor:
    """A trained tabular model with its preprocessing. Call `predict` / `predict_proba` on raw rows."""

    def __init__(self, meta: PredictorMeta, preprocessor: Any, model: "torch.nn.Module") -> None:
        self.meta = meta
        self.preprocessor = preprocessor
        self.model = model.eval()
        self.task: str = meta.task
        self.target: str = meta.data["target"]
        self.classes: list[Any] | None = meta.data["classes"]
        self.positive_class = meta.data["positive_class"]
        self.threshold: float = 0.5 if meta.threshold is None else float(meta.threshold)

    def __repr__(self) -> str:
        return (f"TabularPredictor(task={self.task!r}, target={self.target!r}, family={self.meta.lead.family!r}, "
                f"domain={self.meta.domain!r})")

    # -- prediction --------------------------------------------------------------------------------------

    def _scores(self, rows: "pd.DataFrame") -> "np.ndarray":
        import pandas as pd
        import torch

        from automl.tabular.objective import outputs_to_scores

        if not isinstance(rows, pd.DataFrame):
            raise AutoMLError(f"predict takes a pandas DataFrame of raw rows, got {type(rows).__name__}")
        x_num, x_cat = self.preprocessor.transform(rows)
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(x_num), torch.from_numpy(x_cat)).float()
        scores = outputs_to_scores(logits, self.task).numpy()
        if self.task == REGRESSION:
            scores = scores * self.meta.data["y_std"] + self.meta.data["y_mean"]
        if self.task == BINARY and self.meta.calibration:
            from automl.tabular.calibration import apply_calibration

            scores = apply_calibration(scores, self.meta.calibration)
        return scores

    def predict_proba(self, rows: "pd.DataFrame") -> "pd.DataFrame":
        """Class probabilities, one column per class (named by the class labels), one row per input row."""
        import numpy as np
        import pandas as pd

        if self.task == REGRESSION:
            raise AutoMLError("predict_proba is for classification; this predictor does regression: use predict")
        p = self._scores(rows)
        if self.task == BINARY:
            negative = next(c for c in self.classes if c != self.positive_class)
            cols = {negative: 1.0 - p, self.positive_class: p}
            return pd.DataFrame({c: cols[c] for c in self.classes}, index=rows.index)
        return pd.DataFrame(np.asarray(p), columns=self.classes, index=rows.index)

    def predict(self, rows: "pd.DataFrame") -> "pd.Series":
        """Class labels (binary: P(positive) >= the chosen threshold) or regression values."""
        import numpy as np
        import pandas as pd

        s = self._scores(rows)
        if self.task == BINARY:
            negative = next(c for c in self.classes if c != self.positive_class)
            labels = np.where(s >= self.threshold, self.positive_class, negative)
        elif self.task == MULTICLASS:
            labels = np.asarray(self.classes, dtype=object)[s.argmax(axis=1)]
        else:
            labels = s
        return pd.Series(labels, index=rows.index, name=self.target)

    def lightning_module(self) -> Any:
        """The model as a `LightningModule` (imports Lightning), e.g. to fine-tune it with a Trainer."""
        from automl.tabular.module import TabularModule

        return TabularModule(self.model, self.task, self.meta.lead.hp)
