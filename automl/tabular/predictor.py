"""The saved tabular model: predictor.json, preprocessing JSON, safetensors weights. No pickled code.

`TabularFormat` writes and reads the files; `automl.load(run_dir)` returns a `TabularPredictor`, whose
`predict(df)` and `predict_proba(df)` take raw rows (the target column may be present or not) and apply the
preprocessing fitted during the run, the network (or the average of several), the calibration and the
decision threshold the domain chose.

A model that reads text columns keeps its encoder beside it: `text_encoder/` holds the encoder's
`model.safetensors`, `config.json` and tokenizer files (copied from the run's encoder folder; no training text),
`predictor.json`'s `data.text` names the text columns, and `info.text_encoder` points at that folder, so
`automl.load` needs neither the package the encoder came from nor a network. The model's own weights (its head
and any adapted encoder layers) are in `model.safetensors` as usual.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import AutoMLError
from automl.pipeline import PredictorFormat, assemble
from automl.records import PredictorMeta
from automl.tabular.families import TabularInfo
from automl.tasks import BINARY, REGRESSION

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

    from automl.pipeline import DataInfo, FamilyLookup, Prepared
    from automl.validation import CheckedRows, InputSchema

META, WEIGHTS, PREPROCESSING = "predictor.json", "model.safetensors", "preprocessing.json"
#: The encoder of a model that reads text, inside the predictor folder.
TEXT_ENCODER = "text_encoder"


def _plain(value: Any) -> Any:
    """numpy scalars to Python, so class labels survive JSON."""
    return value.item() if hasattr(value, "item") else value


class TabularFormat(PredictorFormat):
    declines_averaging = None  # members' probabilities (or values) average: WeightedAverage

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
        if "text" in st:
            from automl.text.family import NAME

            if any(m.family == NAME for m in meta.members):  # the final model reads text: keep its encoder
                from automl.text.encoder import copy_encoder

                copy_encoder(Path(st["text"]["encoder"]), directory / TEXT_ENCODER)
                meta.data["text"] = {"columns": list(st["text"]["columns"]), "encoder": TEXT_ENCODER,
                                     "name": st["text"]["name"]}
                meta.info = {**meta.info, "text_encoder": TEXT_ENCODER}  # relative to the predictor folder
            else:  # it does not: the text columns are not needed to score, and no encoder is kept
                meta.info = {**meta.info, "text_encoder": ""}
        (directory / META).write_text(json.dumps(meta.to_json(), indent=2, default=str))
        save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(directory / WEIGHTS))
        (directory / PREPROCESSING).write_text(json.dumps(st["preprocessor"].state))

    def load(self, directory: Path, meta: PredictorMeta, families: "FamilyLookup") -> "TabularPredictor":
        from safetensors.torch import load_file

        from automl.tabular.preprocessing import TabularPreprocessor

        fields = dict(meta.info)
        fields["cardinalities"] = tuple(fields.get("cardinalities", ()))
        if "text_columns" in fields:  # a model of data with text: the encoder is the predictor's own copy
            from automl.text.family import TextInfo

            if fields.get("text_encoder") == TEXT_ENCODER:
                fields["text_encoder"] = str(directory / TEXT_ENCODER)
            info: TabularInfo = TextInfo.from_json(fields)
        else:
            info = TabularInfo(**fields)
        model = assemble(self, meta, info, families)
        model.load_state_dict(load_file(str(directory / WEIGHTS)))
        preprocessor = TabularPreprocessor.from_state(json.loads((directory / PREPROCESSING).read_text()))
        predictor = TabularPredictor(meta, preprocessor, model)
        predictor.text_encoder = getattr(info, "text_encoder", None) or None
        return predictor

    def combine(self, models: list["torch.nn.Module"], weights: list[float],
                info: "DataInfo") -> "torch.nn.Module":
        if any(getattr(m, "uses_text", False) for m in models):
            from automl.text.networks import TextAverage

            return TextAverage(models, info.task, weights)
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
        #: The encoder folder of a model that reads text (`TabularFormat.load` sets it).
        self.text_encoder: str | None = None

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
            if self.text_columns:
                logits = self._text_logits(rows, torch.from_numpy(x_num), torch.from_numpy(x_cat))
            else:
                logits = self.model(torch.from_numpy(x_num), torch.from_numpy(x_cat)).float()
        scores = outputs_to_scores(logits, self.task).numpy()
        if self.task == REGRESSION:
            scores = scores * self.meta.data["y_std"] + self.meta.data["y_mean"]
        if self.task == BINARY and self.meta.calibration:
            from automl.tabular.calibration import apply_calibration

            scores = apply_calibration(scores, self.meta.calibration)
        return scores

    @property
    def text_columns(self) -> list[str]:
        """The text columns the model reads (empty for a model of tabular features only)."""
        return list((self.meta.data.get("text") or {}).get("columns", []))

    def _text_logits(self, rows: "pd.DataFrame", x_num: "torch.Tensor", x_cat: "torch.Tensor") -> "torch.Tensor":
        """Logits of a model that reads text: its text columns tokenized here, a few hundred rows at a time."""
        import torch

        from automl.text.cache import TEXT_EVAL_ROWS, TokenText, texts_of
        from automl.text.encoder import load_encoder

        missing = [c for c in self.text_columns if c not in rows.columns]
        if missing:
            raise AutoMLError(f"input rows lack the text column(s) {', '.join(missing)} the model was trained on")
        encoder = load_encoder(self.text_encoder)
        texts = [texts_of(rows[c]) for c in self.text_columns]
        outs = []
        for start in range(0, len(rows), TEXT_EVAL_ROWS):
            part = slice(start, start + TEXT_EVAL_ROWS)
            source = TokenText(encoder, [t[part] for t in texts])
            outs.append(self.model(x_num[part], x_cat[part], source).float())
        return torch.cat(outs) if outs else torch.empty(0, int(self.meta.info.get("n_outputs", 1)))

    def schema(self) -> "InputSchema":
        """The columns this predictor takes (kinds, training dtypes, known categories) and what it returns."""
        from automl.validation import InputSchema

        if getattr(self, "_schema", None) is None:
            self._schema = InputSchema.of(self.meta, self.preprocessor.state)
        return self._schema

    def _checked_scores(self, rows: "pd.DataFrame", policy: str) -> tuple["np.ndarray", "CheckedRows"]:
        """Scores of rows that passed `automl.validation` (strict refuses bad rows; coerce imputes and warns)."""
        from automl.validation import check_rows, check_scores

        checked = check_rows(rows, self.schema(), policy)
        scores = self._scores(checked.frame)
        check_scores(scores, checked, policy)
        return scores, checked

    def predict_proba(self, rows: "pd.DataFrame", policy: str = "strict") -> "pd.DataFrame":
        """Class probabilities, one column per class (named by the class labels), one row per input row.

        `policy`: "strict" refuses rows the model cannot score as given (a missing column, text in a numeric
        column, inf) with one line naming the column and rows; "coerce" imputes those values and puts one
        warning per row (None where clean) in `result.attrs["warnings"]`.
        """
        import numpy as np
        import pandas as pd

        if self.task == REGRESSION:
            raise AutoMLError("predict_proba is for classification; this predictor does regression: use predict")
        p, checked = self._checked_scores(rows, policy)
        if self.task == BINARY:
            negative = next(c for c in self.classes if c != self.positive_class)
            cols = {negative: 1.0 - p, self.positive_class: p}
            out = pd.DataFrame({c: cols[c] for c in self.classes}, index=rows.index)
        else:
            out = pd.DataFrame(np.asarray(p), columns=self.classes, index=rows.index)
        if policy != "strict":
            out.attrs["warnings"] = checked.warnings
        return out

    def predict(self, rows: "pd.DataFrame", policy: str = "strict") -> "pd.Series":
        """Class labels (binary: P(positive) >= the chosen threshold) or regression values.

        `policy` as for `predict_proba`; under "coerce" a row whose probability is not finite gets no label
        (None), and `result.attrs["warnings"]` says why.
        """
        import pandas as pd

        from automl.validation import decide_labels

        s, checked = self._checked_scores(rows, policy)
        out = pd.Series(decide_labels(s, self.schema()), index=rows.index, name=self.target)
        if policy != "strict":
            out.attrs["warnings"] = checked.warnings
        return out

    def explain(self, rows: "pd.DataFrame", **options: Any) -> Any:
        """Per-row contributions of each original column to the score, by integrated gradients (captum): an
        `automl.tabular.explain.Explanation`. Options: `output` ("probability" / "logit" for binary), `target`
        (multiclass: the class explained), `tolerance`, `n_steps`."""
        from automl.tabular.explain import explain

        return explain(self, rows, **options)

    def lightning_module(self) -> Any:
        """The model as a `LightningModule` (imports Lightning), e.g. to fine-tune it with a Trainer."""
        from automl.tabular.module import TabularModule

        return TabularModule(self.model, self.task, self.meta.lead.hp)
