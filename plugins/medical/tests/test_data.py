"""The four datasets as the pipeline prepares them: targets, dropped columns, imputation, groups, CV folds,
and the warning about a column that looks like a direct identifier."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from automl.testing import prepare_domain


def _prepare(host, dataset=None, frame=None, overrides=()):
    """The dataset (or a DataFrame) prepared exactly as a medical run prepares it."""
    chosen = [f"dataset={dataset}"] if dataset else []
    return prepare_domain(host, ["domain=medical", *chosen, *overrides], frame).prepared


def test_breast_biopsy_drops_the_identifier_imputes_and_keeps_repeat_samples_together(host, biopsy):
    assert biopsy.shape == (699, 12) and int(biopsy["V6"].isna().sum()) == 16
    prepared = _prepare(host, "breast_biopsy")
    assert list(prepared.state["columns"]) == [f"V{i}" for i in range(1, 10)]  # no ID, no rownames
    assert prepared.state["positive_class"] == "malignant"
    assert np.isfinite(prepared.arrays["x_num"]).all()  # the 16 missing scores are imputed
    assert prepared.arrays["y"].mean() == pytest.approx(241 / 699)
    ids = biopsy["ID"].to_numpy()
    sides = [set(ids[rows]) for rows in (prepared.train, prepared.val, prepared.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    for train, val in prepared.folds:
        assert not set(ids[train]) & set(ids[val])
    assert len(prepared.folds) == 10  # 5 folds x 2 repeats: the domain's default for small data


def test_breast_diagnostic_has_a_readable_target(host):
    prepared = _prepare(host, "breast_diagnostic")
    assert prepared.state["classes"] == ["benign", "malignant"] and prepared.state["positive_class"] == "malignant"
    assert int(prepared.arrays["y"].sum()) == 212 and len(prepared.state["columns"]) == 30


def test_flchain_drops_leakage_and_is_large_enough_for_one_validation_split(host):
    prepared = _prepare(host, "flchain_mortality")
    columns = set(prepared.state["columns"])
    assert not columns & {"futime", "chapter", "rownames", "death"}
    assert {"age", "sex", "kappa", "lambda", "creatinine"} <= columns
    assert prepared.folds is None  # 7,874 rows >= search.cv.below_rows=2000
    assert len(prepared.test) == round(7874 * 0.2)


def test_parkinsons_speech_is_wide_and_cross_validated(host):
    prepared = _prepare(host, "parkinsons_speech", overrides=["search.cv.repeats=1"])
    assert len(prepared.state["columns"]) == 751  # gender + 750 acoustic features
    assert prepared.info.n_train + len(prepared.val) + len(prepared.test) == 252
    assert len(prepared.folds) == 5 and prepared.state["positive_class"] == "PD"


def test_a_column_that_looks_like_a_direct_identifier_is_named_in_a_warning(host, biopsy, caplog):
    frame = biopsy.drop(columns=["rownames"]).assign(patient_mrn=np.arange(len(biopsy)) + 5_000_000)
    with caplog.at_level(logging.WARNING):
        prepared = _prepare(host, frame=frame, overrides=["data.target=class", "data.id_columns=[ID]"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'patient_mrn'" in w and "identifier" in w for w in warnings), warnings
    assert "ID" not in prepared.state["columns"]
