"""Request and response models of the service, generated from the predictor's columns with pydantic.

One field per input column, named by the column (an alias: columns need not be Python names): numbers as
`Optional[float]` (finite; null is a missing value, imputed), categories as `Optional[str]` (a number such as
415 is read as its text, as the preprocessor reads it), dates as `Optional[str]` in the training format, free
text (read by the model's text encoder) as `Optional[str]` (null is the empty text).
Every column is required, so a row without one is a 422 naming it; columns the model does not use are
accepted and listed back as ignored. The same models give the OpenAPI page at /docs its schema.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from automl.validation import InputSchema

#: Rows one request may carry at most (the body size limit bounds it too).
MAX_ROWS = 100_000


def row_model(schema: InputSchema) -> type[BaseModel]:
    """A pydantic model of one raw row of this predictor."""
    fields: dict[str, Any] = {}
    for i, col in enumerate(schema.columns):
        dtype = schema.dtypes.get(col)
        if col in schema.numeric:
            about = f"number (trained as {dtype}); null: missing, imputed"
            fields[f"c{i}"] = (Optional[float], Field(..., alias=col, allow_inf_nan=False, description=about))
        elif col in schema.text:
            fields[f"c{i}"] = (Optional[str], Field(..., alias=col, description=(
                "free text, read by the model's text encoder; null: missing (the empty text)")))
        elif col in schema.dates:
            fields[f"c{i}"] = (Optional[str], Field(..., alias=col, description=(
                f"date, written as in training ({schema.dates[col]}); null: missing, imputed")))
        else:
            known = list(schema.categories.get(col, ()))
            shown = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
            fields[f"c{i}"] = (Optional[str], Field(..., alias=col, description=(
                f"category, one of: {shown}; another value is scored as unknown; null: missing"),
                json_schema_extra={"examples": known[:3]}))
    config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=False)
    return create_model("Row", __config__=config, **fields)


def predict_request(schema: InputSchema) -> tuple[type[BaseModel], type[BaseModel]]:
    """The `/predict` request model and its row model."""
    row = row_model(schema)
    request = create_model(
        "PredictRequest",
        rows=(list[row], Field(..., min_length=1, max_length=MAX_ROWS,
                               description="raw rows: one object per row, keyed by column name")),
    )
    return request, row


class Prediction(BaseModel):
    """One row's prediction: a label and the probability of each class, or a regression value."""

    label: Optional[Union[str, int, float, bool]] = Field(
        None, description="the predicted class (binary: P(positive) >= threshold); null where no label can be given")
    probabilities: Optional[dict[str, float]] = Field(None, description="probability per class (keys: class labels)")
    value: Optional[float] = Field(None, description="regression: the predicted value")


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    classes: Optional[list[Union[str, int, float, bool]]] = None
    positive_class: Optional[Union[str, int, float, bool]] = None
    threshold: Optional[float] = Field(None, description="binary: the decision threshold on P(positive)")
    ignored_columns: list[str] = Field(default_factory=list, description="columns of the rows the model does not use")
    notes: list[str] = Field(default_factory=list, description="what was scored as unknown (unseen categories)")
    backend: str


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: Union[int, str] = Field(..., description="a user id as in the training data")
    k: int = Field(10, ge=1, le=1000, description="how many items")


class Recommendation(BaseModel):
    rank: int
    item: Union[int, str]
    score: float
    source: str


class RecommendResponse(BaseModel):
    user: Union[int, str]
    known_user: bool
    items: list[Recommendation]
