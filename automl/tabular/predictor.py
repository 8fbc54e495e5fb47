"""The saved tabular model: config JSON, preprocessing JSON, safetensors weights. No pickled code.

`automl.load(run_dir)` returns a `TabularPredictor`; `predict(df)` and `predict_proba(df)` take raw rows
(the target column may be present or not) and apply the preprocessing fitted during the run.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import AutoMLError
from automl.specs import BINARY, MULTICLASS, REGRESSION
from automl.tabular.families import TabularInfo

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

    from automl.pipeline import Prepared
    from automl.plugins import PluginHost

#: 2: preprocessing as JSON (format 1 stored it with skops).
FORMAT = 2
META, WEIGHTS, PREPROCESSING = "predictor.json", "model.safetensors", "preprocessing.json"


def _plain(value: Any) -> Any:
    """numpy scalars to Python, so class labels survive JSON."""
    return value.item() if hasattr(value, "item") else value


def save_tabular_predictor(directory: str, prepared: "Prepared", family: str, params: dict[str, Any],
                           state_dict: dict[str, "torch.Tensor"], extra: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    st = prepared.state
    meta = {
        "format": FORMAT,
        "pipeline": "tabular",
        "family": family,
        "params": params,
        "info": asdict(prepared.info),
        "target": st["target"],
        "task": st["task"],
        "classes": [_plain(c) for c in st["classes"]] if st["classes"] is not None else None,
        "positive_class": _plain(st["positive_class"]),
        "columns": st["columns"],
        "y_mean": st.get("y_mean"),
        "y_std": st.get("y_std"),
        **extra,
    }
    (d / META).write_text(json.dumps(meta, indent=2, default=str))
    save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(d / WEIGHTS))
    (d / PREPROCESSING).write_text(json.dumps(st["preprocessor"].state))


class TabularPredictor:
    """A trained tabular model with its preprocessing. Call `predict` / `predict_proba` on raw rows."""

    def __init__(self, meta: dict[str, Any], preprocessor: Any, model: "torch.nn.Module") -> None:
        self.meta = meta
        self.preprocessor = preprocessor
        self.model = model.eval()
        self.task: str = meta["task"]
        self.target: str = meta["target"]
        self.classes: list[Any] | None = meta["classes"]
        self.positive_class = meta["positive_class"]
        threshold = meta.get("threshold")
        self.threshold: float = 0.5 if threshold is None else float(threshold)

    def __repr__(self) -> str:
        return (f"TabularPredictor(task={self.task!r}, target={self.target!r}, family={self.meta['family']!r}, "
                f"domain={self.meta.get('domain')!r})")

    @classmethod
    def load(cls, directory: str, meta: dict[str, Any], host: "PluginHost") -> "TabularPredictor":
        from safetensors.torch import load_file

        from automl.tabular.preprocessing import TabularPreprocessor

        if meta.get("format") != FORMAT:
            raise AutoMLError(f"{directory}: predictor format {meta.get('format')} is not supported by this "
                              f"version of automl (it reads format {FORMAT}): run the search again to save it anew")
        d = Path(directory)
        family = host.model_families.get(meta["family"])
        info_fields = dict(meta["info"])
        info_fields["cardinalities"] = tuple(info_fields.get("cardinalities", ()))
        info = TabularInfo(**info_fields)
        if meta.get("bagged"):
            from automl.tabular.bagging import Bag

            model = Bag([family.create(meta["params"], info) for _ in range(int(meta["bagged"]))], meta["task"])
        else:
            model = family.create(meta["params"], info)
        model.load_state_dict(load_file(str(d / WEIGHTS)))
        preprocessor = TabularPreprocessor.from_state(json.loads((d / PREPROCESSING).read_text()))
        return cls(meta, preprocessor, model)

    # -- prediction --------------------------------------------------------------------------------------

    def _scores(self, rows: "pd.DataFrame") -> "np.ndarray":
        import pandas as pd
        import torch

        from automl.tabular.pipeline import outputs_to_scores

        if not isinstance(rows, pd.DataFrame):
            raise AutoMLError(f"predict takes a pandas DataFrame of raw rows, got {type(rows).__name__}")
        x_num, x_cat = self.preprocessor.transform(rows)
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(x_num), torch.from_numpy(x_cat)).float()
        scores = outputs_to_scores(logits, self.task).numpy()
        if self.task == REGRESSION:
            scores = scores * self.meta["y_std"] + self.meta["y_mean"]
        if self.task == BINARY and self.meta.get("calibration"):
            from automl.tabular.calibration import apply_calibration

            scores = apply_calibration(scores, self.meta["calibration"])
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

        return TabularModule(self.model, self.task, self.meta.get("hyperparameters", {}))
