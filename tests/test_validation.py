"""The prediction-time validation layer (`automl.validation`): what strict refuses, what coerce imputes and says,
and that a row whose output is not finite never gets a label. Hand-made schemas, no model: fast."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from automl.errors import ConfigError, DataError
from automl.validation import COERCE, STRICT, InputSchema, InvalidRows, check_rows, check_scores, decide_labels


@pytest.fixture
def schema() -> InputSchema:
    return InputSchema(task="binary", target="default", numeric=("income", "age"), categorical=("region",),
                       categories={"region": ("north", "south", "415")},
                       dtypes={"income": "float64", "region": "object", "age": "int64"},
                       classes=("no", "yes"), positive_class="yes", threshold=0.3)


def rows(**changes) -> pd.DataFrame:
    frame = pd.DataFrame({"income": [1.0, 2.0, None, 4.0], "age": [30, 40, 50, 60],
                          "region": ["north", None, "south", "west"], "default": ["no"] * 4, "id": [1, 2, 3, 4]})
    for col, values in changes.items():
        frame[col] = pd.Series(values, dtype=object)
    return frame


def test_clean_rows_pass_with_missing_values_and_unseen_categories(schema):
    checked = check_rows(rows(), schema, STRICT)
    assert list(checked.frame.columns) == ["income", "region", "age"]  # the table's order, from the dtypes
    assert math.isnan(checked.frame["income"][2]) and checked.frame["region"].isna()[1]  # missing: imputed later
    assert checked.ignored == ["default", "id"]
    unseen = [i for i in checked.issues if not i.fatal]
    assert [(i.column, i.rows) for i in unseen] == [("region", (3,))]  # "west": scored as unknown, not refused
    assert checked.warnings == [None] * 4


@pytest.mark.parametrize("change, column, words", [
    ({"income": ["1", "abc", 3, 4]}, "income", "text that is not a number ('abc') in row 1"),
    ({"age": [30, float("inf"), 50, -float("inf")]}, "age", "not finite"),
    ({"age": [30, 1e300, 50, 60]}, "age", "float32"),
])
def test_strict_refuses_one_line_naming_column_and_rows(schema, change, column, words):
    with pytest.raises(InvalidRows) as err:
        check_rows(rows(**change), schema, STRICT)
    message = str(err.value)
    assert "\n" not in message and f"column {column!r}" in message and words in message
    assert isinstance(err.value, DataError) and err.value.issues[0].column == column


def test_strict_names_a_missing_column_and_lists_more_problems(schema):
    with pytest.raises(InvalidRows, match=r"column 'region' is missing .*and 1 more problem: income text"):
        check_rows(rows(income=[1, "x", 2, 3]).drop(columns=["region"]), schema, STRICT)


def test_coerce_imputes_and_warns_per_row(schema, caplog):
    checked = check_rows(rows(income=["1", "abc", None, 4], age=[30, 40, float("inf"), 60]), schema, COERCE)
    assert checked.frame["income"][0] == 1.0
    assert math.isnan(checked.frame["income"][1]) and math.isnan(checked.frame["age"][2])
    assert checked.warnings[0] is None
    assert "income: text that is not a number, imputed" in checked.warnings[1]
    assert "age: a number that is not finite" in checked.warnings[2]
    assert "region: a category not seen in training" in checked.warnings[3]
    assert "2 of 4 rows" in caplog.text  # a count in the log, not the values


def test_a_non_string_category_is_read_as_its_text(schema):
    checked = check_rows(rows(region=[415, "north", "south", "north"]), schema, STRICT)
    assert checked.frame["region"][0] == "415" and not checked.issues


def test_bad_policy_and_bad_input_are_one_line_errors(schema):
    with pytest.raises(ConfigError, match="strict or coerce"):
        check_rows(rows(), schema, "lenient")
    with pytest.raises(DataError, match="DataFrame"):
        check_rows([{"income": 1}], schema, STRICT)


def test_no_label_for_a_non_finite_output(schema):
    scores = np.array([0.1, np.nan, 0.35, np.inf])
    checked = check_rows(rows(), schema, COERCE)
    with pytest.raises(InvalidRows, match="output is not finite"):
        check_scores(scores, check_rows(rows(), schema, STRICT), STRICT)
    finite = check_scores(scores, checked, COERCE)
    assert finite.tolist() == [True, False, True, False]
    assert "no label" in checked.warnings[1] and "no label" in checked.warnings[3]
    labels = decide_labels(scores, schema)
    assert labels.tolist() == ["no", None, "yes", None]  # threshold 0.3, not 0.5; NaN never becomes "no"


def test_multiclass_and_regression_labels():
    multi = InputSchema(task="multiclass", target="y", numeric=("x",), categorical=(), categories={},
                        classes=("a", "b", "c"))
    probs = np.array([[0.2, 0.5, 0.3], [np.nan, 0.1, 0.9]])
    assert decide_labels(probs, multi).tolist() == ["b", None]
    reg = InputSchema(task="regression", target="y", numeric=("x",), categorical=(), categories={})
    assert decide_labels(np.array([1.5, 2.0]), reg).tolist() == [1.5, 2.0]


def test_schema_round_trips_through_json(schema):
    again = InputSchema.from_json(schema.to_json())
    assert again == schema
    assert schema.to_json()["columns"][1] == {"name": "region", "kind": "categorical", "dtype": "object",
                                              "categories": ["north", "south", "415"]}


def test_date_columns_pass_through_and_text_that_is_no_date_is_named():
    schema = InputSchema(task="regression", target="y", numeric=("x",), categorical=(), categories={},
                         dates={"opened": "ISO8601"}, dtypes={"opened": "object", "x": "float64"})
    frame = pd.DataFrame({"opened": ["2024-01-05", None, "2023-12-31"], "x": [1.0, 2.0, 3.0]})
    checked = check_rows(frame, schema, STRICT)
    assert list(checked.frame.columns) == ["opened", "x"] and checked.frame["opened"][0] == "2024-01-05"
    frame.loc[2, "opened"] = "someday"
    with pytest.raises(InvalidRows, match="column 'opened': text that is not a date .*'someday'.* row 2"):
        check_rows(frame, schema, STRICT)
    coerced = check_rows(frame, schema, COERCE)
    assert pd.isna(coerced.frame["opened"][2]) and "opened" in coerced.warnings[2]
    assert InputSchema.from_json(schema.to_json()).dates == {"opened": "ISO8601"}
