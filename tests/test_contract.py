"""The plugin contract check (`automl.testing`): on the built-in plugin, on broken plugins registered in-process,
through the pytest fixture, and through `automl plugins [--check]` on broken plugins installed as real
distributions with pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from automl.commands import plugins as plugins_cmd
from automl.host import PluginHost
from automl.testing import check_plugin

pytest_plugins = ["pytester"]


def _site_env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _blocks(listing: str) -> dict[str, str]:
    """`automl plugins` output split into one block per plugin, keyed by plugin name."""
    blocks: dict[str, str] = {}
    for line in listing.splitlines():
        if line and not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = line
        elif blocks:
            blocks[name] += "\n" + line
    return blocks


# -- the check itself, in-process --------------------------------------------------------------------------


def test_builtin_plugin_passes_and_everything_it_registers_runs(monkeypatch, capsys):
    """`automl plugins --check --json` on a host with only the built-in plugin: exit 0, and every domain,
    dataset, family (ft_transformer, which no domain searches, included) and metric (the multiclass and
    regression ones on penguins and ames) ran on real data."""
    monkeypatch.setattr(PluginHost, "installed", classmethod(lambda cls: cls(entry_points=False)))
    assert plugins_cmd.main(["--check", "--json"]) == 0
    out, err = capsys.readouterr()
    (builtin,) = json.loads(out)
    assert builtin["problems"] == [] and builtin["check"]["passed"]
    exercised = builtin["check"]["exercised"]
    assert exercised["domains"] == ["tabular"]
    assert exercised["datasets"] == ["ames", "campaign_tweets", "churn", "penguins"]
    assert exercised["model_families"] == ["dcn", "ft_transformer", "mlp", "tabm", "text_fusion"]
    assert exercised["metrics"] == sorted(PluginHost(entry_points=False).metrics.names())
    assert "all 1 plugins passed the contract check" in err


SHAKY = '''
    import pandas  # noqa: F401 - a heavy import at module level, which the check must report

    from automl import hookimpl
    from automl.specs import BINARY, TABULAR_TASKS, DomainSpec, MetricSpec, ModelFamily


    def narrow_space(trial, info):
        return {"width": trial.suggest_int("width", 4, 8)}


    def narrow_network(params, info):
        import torch

        class Narrow(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(3, 1)  # ignores info.n_num: breaks on any real table

            def forward(self, x_num, x_cat):
                return self.linear(x_num)

        return Narrow()


    def exploding(y_true, y_score):
        raise RuntimeError("metric exploded")


    @hookimpl
    def automl_register_domains():
        return [DomainSpec("shaky", metrics={BINARY: ("roc_auc", "shaky_boom", "rmse")}, families=("mlp",),
                           default_dataset="churn")]


    @hookimpl
    def automl_register_model_families():
        return [ModelFamily("narrow", TABULAR_TASKS, search_space=narrow_space, network=narrow_network)]


    @hookimpl
    def automl_register_metrics():
        return [MetricSpec("shaky_boom", "maximize", {BINARY}, exploding)]
'''


def test_broken_plugin_in_process_gets_every_problem_with_its_reason(tmp_path, monkeypatch):
    (tmp_path / "shaky_plugin.py").write_text(textwrap.dedent(SHAKY))
    monkeypatch.syspath_prepend(str(tmp_path))
    import shaky_plugin

    report = check_plugin(shaky_plugin, name="shaky")
    assert not report.ok
    assert list(report.problems) == ["shaky"]  # the built-in plugin it ran beside is fine
    problems = "\n".join(report.problems["shaky"])
    assert "domain 'shaky': metric 'rmse' does not apply to binary tasks" in problems
    assert ("model family 'narrow' on domain 'shaky' on dataset 'churn': one training step: RuntimeError: "
            "mat1 and mat2 shapes cannot be multiplied") in problems  # no domain searches it: checked anyway
    assert "metric 'shaky_boom' on predictions of domain 'shaky' on dataset 'churn': RuntimeError: metric exploded" \
        in problems
    assert "importing shaky_plugin and calling its registration hooks imports pandas" in problems
    assert report.exercised["domains"] == {"shaky"} and "mlp" in report.exercised["model_families"]
    assert "plugin 'shaky': " in report.format()


def test_fixture_fails_the_test_and_lists_every_problem(pytester):
    pytester.makepyfile(test_typo='''
        from automl import hookimpl
        from automl.specs import DomainSpec


        class Typo:
            @hookimpl
            def automl_register_domains(self):
                return [DomainSpec("typo", metrics={"binary": ("roc_auk",)}, default_dataset="churn")]


        def test_contract(automl_contract):
            automl_contract(Typo(), name="typo")
    ''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*automl contract check failed:*",
        "*plugin 'typo': domain 'typo': metric 'roc_auk' is not registered. Did you mean 'roc_auc'?*",
    ])


# -- broken plugins as real installed distributions --------------------------------------------------------

BROKEN = {
    "broken_import": "import automl_missing_dependency  # noqa: F401\n",
    "raising_hook": '''
        from automl import hookimpl


        @hookimpl
        def automl_register_datasets():
            raise RuntimeError("database offline")
    ''',
    "duplicate": '''
        from automl import hookimpl
        from automl.specs import DatasetSpec


        @hookimpl
        def automl_register_datasets():
            return [DatasetSpec(name="churn", loader=lambda: None, target="y")]
    ''',
    "wrong_type": '''
        from automl import hookimpl


        @hookimpl
        def automl_register_metrics():
            return {"name": "accuracy_of_sorts"}
    ''',
    "bad_family": '''
        from automl import hookimpl
        from automl.specs import TABULAR_TASKS, ModelFamily


        def space(trial, info):
            return {"width": trial.suggest_int("width", 4, 8)}


        def network(params, info):
            import torch

            class Narrow(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.linear = torch.nn.Linear(3, 1)  # ignores the data's width: only real rows show it

                def forward(self, x_num, x_cat):
                    return self.linear(x_num)

            return Narrow()


        @hookimpl
        def automl_register_model_families():
            return [ModelFamily("bad_net", TABULAR_TASKS, search_space=space, network=network)]
    ''',
    "fine": '''
        from automl import hookimpl
        from automl.specs import BINARY, MAXIMIZE, MetricSpec


        def hit_rate(y_true, y_score):
            import numpy as np

            return float(np.mean((np.asarray(y_score) >= 0.5) == np.asarray(y_true)))


        @hookimpl
        def automl_register_metrics():
            return [MetricSpec("fine_hit_rate", MAXIMIZE, {BINARY}, hit_rate)]
    ''',
}
REASONS = {
    "broken_import": "failed to import 'automl_broken_import.plugin': ModuleNotFoundError: No module named "
                     "'automl_missing_dependency'",
    "raising_hook": "hook automl_register_datasets raised RuntimeError: database offline",
    "duplicate": "dataset 'churn' is a built-in name; plugin 'duplicate' registered it again",
    "wrong_type": "hook automl_register_metrics returned dict; expected a list of MetricSpec",
}


def _distribution(root: Path, name: str, source: str) -> Path:
    """A one-module plugin distribution `automl-<name>` with an entry point `<name>` in group `automl`."""
    folder = root / name
    (folder / f"automl_{name}").mkdir(parents=True)
    (folder / f"automl_{name}" / "__init__.py").write_text("")
    (folder / f"automl_{name}" / "plugin.py").write_text(textwrap.dedent(source))
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "automl-{name.replace('_', '-')}"
        version = "0.0.1"

        [project.entry-points.automl]
        {name} = "automl_{name}.plugin"

        [tool.setuptools]
        packages = ["automl_{name}"]
    """))
    return folder


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    """Every distribution of BROKEN, built and installed with pip into one folder (put on PYTHONPATH)."""
    root = tmp_path_factory.mktemp("broken_src")
    site = tmp_path_factory.mktemp("broken_site")
    folders = [str(_distribution(root, name, source)) for name, source in BROKEN.items()]
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "--target", str(site), *folders],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return site


@pytest.mark.e2e
def test_automl_plugins_reports_each_broken_plugin_and_the_rest_keep_working(automl_cli, broken_site, tmp_path):
    env = _site_env(broken_site)
    listing = _run([automl_cli, "plugins"], env, tmp_path)
    assert listing.returncode == 1, listing.stderr  # some plugins are broken
    summary = next(line for line in listing.stderr.splitlines() if line.startswith("automl plugins: "))
    assert sorted(summary.split("failed: ")[1].split(" (")[0].split(", ")) == sorted(REASONS)
    blocks = _blocks(listing.stdout)
    for name, reason in REASONS.items():
        assert "[BROKEN]" in blocks[name].splitlines()[0] and reason in blocks[name], blocks[name]
    assert "[BROKEN]" not in blocks["builtin"] and "domains: tabular" in blocks["builtin"]
    assert "[BROKEN]" not in blocks["fine"] and "metrics: fine_hit_rate" in blocks["fine"]
    assert "[BROKEN]" not in blocks["bad_family"]  # its registration is fine: only --check runs the model

    search = _run([automl_cli, "dataset=penguins", "search.n_trials=1", "trainer.max_epochs=1",
                   f"run_dir={tmp_path / 'run'}"], env, tmp_path)
    assert search.returncode == 0, search.stderr
    assert (tmp_path / "run" / "metrics.json").exists()
    # a plugin whose hook failed is skipped whole, and says so
    assert "plugin 'raising_hook' (automl-raising-hook) skipped whole" in search.stderr


@pytest.mark.e2e
def test_check_exits_nonzero_naming_each_broken_plugin_and_its_reason(automl_cli, broken_site, tmp_path):
    proc = _run([automl_cli, "plugins", "--check"], _site_env(broken_site), tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()  # after the host's own warnings about the plugins it skipped
    summary = lines[next(i for i, line in enumerate(lines) if line.startswith("automl plugins --check: ")):]
    failed = summary[0].split("failed: ")[1].split(" (")[0].split(", ")
    # Exactly the broken ones: the built-in plugin, `fine` and every first-party plugin installed pass.
    assert sorted(failed) == sorted([*REASONS, "bad_family"]), proc.stderr
    for name, reason in REASONS.items():
        assert any(line.startswith(f"  {name}: ") and reason in line for line in summary), name
    assert any(line.startswith("  bad_family: model family 'bad_net' on domain ") and "one training step: "
               "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in line for line in summary), proc.stderr
    blocks = _blocks(proc.stdout)
    assert "check: passed" in blocks["fine"] and "metrics computed 1/1" in blocks["fine"]
    assert "check: passed" in blocks["builtin"]
