"""End to end: the real `automl` command and the SDK from a plain script, on shipped data (credit_data)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
TINY = ["search.n_trials=3", "trainer.max_epochs=3"]


def _run(cmd: list[str], cwd, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_cli_search_on_csv_then_continue_then_predict(automl_cli, credit_csv, tmp_path):
    run_dir = tmp_path / "D"
    cmd = [automl_cli, "domain=tabular", f"data.path={credit_csv}", "data.target=Status", *TINY, f"run_dir={run_dir}"]
    first = _run(cmd, cwd=tmp_path)
    assert "Traceback" not in first.stderr
    assert len(pd.read_csv(run_dir / "leaderboard.csv")) == 3
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["test"]["roc_auc"] >= 0.75 and report["n_test"] == 891 and report["format"] == 2
    assert {"number", "state", "value", "duration_s"} <= set(pd.read_csv(run_dir / "leaderboard.csv").columns)

    _run(cmd, cwd=tmp_path)  # the same command again continues the study
    assert len(pd.read_csv(run_dir / "leaderboard.csv")) == 6

    import automl

    rows = pd.read_csv(credit_csv).drop(columns=["Status"]).head(20)
    proba = automl.load(run_dir).predict_proba(rows)
    assert list(proba.columns) == ["bad", "good"] and proba.shape == (20, 2)
    assert ((proba.sum(axis=1) - 1).abs() < 1e-5).all()
    assert not list(tmp_path.glob("outputs"))  # Hydra writes into run_dir, not the working directory


def test_cli_unknown_target_is_one_clear_line(automl_cli, credit_csv, tmp_path):
    proc = _run([automl_cli, f"data.path={credit_csv}", "data.target=nope", f"run_dir={tmp_path / 'x'}"],
                cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "nope" in proc.stderr and "Seniority" in proc.stderr and "Status" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_registered_dataset(automl_cli, tmp_path):
    _run([automl_cli, "dataset=penguins", *TINY, f"run_dir={tmp_path / 'p'}"], cwd=tmp_path)
    assert "accuracy" in json.loads((tmp_path / "p" / "metrics.json").read_text())["test"]


def test_cli_multirun(automl_cli, tmp_path):
    proc = _run([automl_cli, "--multirun", "dataset=penguins", "search.n_trials=1", "trainer.max_epochs=1",
                 "search.sampler=tpe,random", f"run_dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert proc.returncode == 0
    assert (tmp_path / "sweep" / "0" / "metrics.json").exists()
    assert (tmp_path / "sweep" / "1" / "metrics.json").exists()


def test_cli_plugins_lists_the_builtin_plugin(automl_cli, tmp_path):
    proc = _run([automl_cli, "plugins"], cwd=tmp_path)
    assert proc.stdout.startswith("builtin")
    for part in ("domains: tabular", "datasets: ames, campaign_tweets, churn, penguins", "dcn, ft_transformer, mlp", "roc_auc"):
        assert part in proc.stdout
    data = json.loads(_run([automl_cli, "plugins", "--json"], cwd=tmp_path).stdout)
    assert data[0]["name"] == "builtin" and "tabular" in data[0]["registered"]["domains"]


def test_cli_help_shows_the_config_without_importing_torch(automl_cli, tmp_path):
    proc = _run([automl_cli, "--help"], cwd=tmp_path)
    assert "search:" in proc.stdout and "n_trials" in proc.stdout and "automl plugins" in proc.stdout
    probe = _run([sys.executable, "-c", "import sys; from automl.cli import main; "
                  "sys.argv=['automl','plugins']; main(); print('torch' in sys.modules, 'lightning' in sys.modules)"],
                 cwd=tmp_path)
    assert probe.stdout.strip().endswith("False False")


def test_sdk_from_a_plain_python_script(tmp_path, credit_csv):
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent(f"""
        import pandas as pd
        import automl
        from automl import AutoML

        df = pd.read_csv({str(credit_csv)!r})
        result = AutoML(domain="tabular", overrides=["search.n_trials=3", "trainer.max_epochs=3"]).fit(
            data=df, target="Status")
        assert len(result.leaderboard) == 3, result.leaderboard
        assert set(result.best_params) >= {{"family", "lr"}}, result.best_params
        assert result.test_metrics["roc_auc"] > 0.7
        predictor = automl.load(result.run_dir)
        print(predictor.predict(df.drop(columns=["Status"]).head(3)).tolist())
        print("run_dir", result.run_dir)
    """))
    proc = _run([sys.executable, str(script)], cwd=tmp_path)
    assert "run_dir runs/" in proc.stdout
    labels = eval(proc.stdout.splitlines()[0])  # noqa: S307 - our own script's printed list
    assert set(labels) <= {"good", "bad"}


def test_cli_predict_scores_a_file(automl_cli, credit_csv, tmp_path):
    run_dir = tmp_path / "D"
    _run([automl_cli, f"data.path={credit_csv}", "data.target=Status", "search.n_trials=1", "trainer.max_epochs=1",
          f"run_dir={run_dir}"], cwd=tmp_path)
    rows = pd.read_csv(credit_csv).drop(columns=["Status"]).head(25)
    rows.to_csv(tmp_path / "new.csv", index=False)
    _run([automl_cli, "predict", str(run_dir), str(tmp_path / "new.csv"), "--keep", "rownames", "--out",
          str(tmp_path / "scored.csv")], cwd=tmp_path)
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns) == ["rownames", "prediction", "probability_bad", "probability_good"]
    assert len(scored) == 25 and set(scored.prediction) <= {"good", "bad"}
    bad = _run([automl_cli, "predict", str(tmp_path / "nowhere"), str(tmp_path / "new.csv")], cwd=tmp_path,
               check=False)
    assert bad.returncode == 2 and "no predictor in" in bad.stderr and "Traceback" not in bad.stderr
