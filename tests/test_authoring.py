"""Plugin authoring: `automl new-plugin` renders a distribution that installs with pip, is listed by
`automl plugins`, passes its own generated tests and runs a search; the guide documents every hook and its
minimal plugin passes the contract check."""

from __future__ import annotations

import ast
import importlib.resources
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from automl.cli import main
from automl.commands.new_plugin import PluginNames
from automl.commands.new_plugin import main as new_plugin_command

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
NAME = "claims"


def _site_env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """`automl new-plugin claims --dir T`: the rendered distribution's folder."""
    parent = tmp_path_factory.mktemp("T")
    assert new_plugin_command([NAME, "--dir", str(parent)]) == 0
    return parent / "automl-claims"


@pytest.fixture(scope="module")
def site(rendered, tmp_path_factory) -> Path:
    """The rendered plugin installed by pip into a folder of its own (put on PYTHONPATH)."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "--target", str(target), str(rendered)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target


# -- rendering ---------------------------------------------------------------------------------------------


def test_rendered_distribution_is_complete(rendered, capsys):
    files = sorted(p.relative_to(rendered).as_posix() for p in rendered.rglob("*") if p.is_file())
    assert files == [
        "README.md", "automl_claims/__init__.py", "automl_claims/conf/__init__.py",
        "automl_claims/conf/domain/__init__.py", "automl_claims/conf/domain/claims.yaml",
        "automl_claims/example.csv", "automl_claims/metrics.py", "automl_claims/plugin.py", "pyproject.toml",
        "tests/test_plugin.py",
    ]
    pyproject = (rendered / "pyproject.toml").read_text()
    assert '[project.entry-points.automl]\nclaims = "automl_claims.plugin"' in pyproject
    for path in rendered.rglob("*"):
        if path.suffix in (".py", ".toml", ".yaml", ".md"):
            text = path.read_text()
            assert "{{" not in text and "{%" not in text, f"unrendered Jinja in {path}"
            if path.suffix == ".py":
                ast.parse(text)
    assert len((rendered / "automl_claims" / "example.csv").read_text().splitlines()) == 501  # header + 500
    readme = (rendered / "README.md").read_text()
    assert "modeldata" in readme and "wa_churn" in readme and "automl domain=claims" in readme


@pytest.mark.parametrize("name, reason", [
    ("Claims", "is not valid: use lower-case letters"),
    ("9lives", "is not valid"),
    ("claims-2", "is not valid"),
    ("tabular", "domain 'tabular' is already registered by plugin 'builtin'"),
    ("medical", "'medical' is the first-party plugin 'automl-medical'"),
    ("builtin", "reserved by the host"),
])
def test_bad_names_are_one_clear_line(name, reason, tmp_path, capsys):
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("automl: error: ") and reason in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_existing_folder_is_refused(rendered, capsys):
    assert main(["new-plugin", NAME, "--dir", str(rendered.parent)]) == 2
    assert "already exists: remove it or pass another --dir" in capsys.readouterr().err


def test_names_derive_from_the_plugin_name():
    names = PluginNames.of("fraud_cards")
    assert (names.package, names.distribution, names.dataset, names.metric) == (
        "automl_fraud_cards", "automl-fraud-cards", "fraud_cards_example", "fraud_cards_top_decile_recall")


def test_template_ships_inside_the_package():
    root = importlib.resources.files("automl.templates") / "plugin"
    assert (root / "pyproject.toml.jinja").is_file()
    assert (root / "automl_{{name}}" / "example.csv").is_file()


# -- the rendered plugin, installed with pip ---------------------------------------------------------------


@pytest.mark.e2e
def test_installed_plugin_is_listed(automl_cli, site, tmp_path):
    out = _run([automl_cli, "plugins", "--json"], _site_env(site), tmp_path).stdout
    plugin = next(p for p in json.loads(out) if p["name"] == NAME)
    assert plugin["distribution"] == "automl-claims" and plugin["problems"] == []
    assert plugin["registered"] == {"domains": ["claims"], "datasets": ["claims_example"],
                                    "metrics": ["claims_top_decile_recall"]}


@pytest.mark.e2e
def test_generated_tests_pass_as_generated(rendered, site):
    proc = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], _site_env(site), rendered)
    assert re.search(r"\b5 passed\b", proc.stdout), proc.stdout


@pytest.mark.e2e
def test_search_runs_with_the_installed_plugin(automl_cli, site, tmp_path):
    run_dir = tmp_path / "run"
    _run([automl_cli, f"domain={NAME}", "search.n_trials=2", "trainer.max_epochs=2", f"run_dir={run_dir}"],
         _site_env(site), tmp_path)
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["model"]["objective"] == "roc_auc"
    # the plugin's domain searches mlp alone: the final model is one mlp or an ensemble of mlps
    assert {m["family"] for m in report["model"]["members"]} == {"mlp"}
    assert isinstance(report["test"]["claims_top_decile_recall"], float)  # its value is checked by the generated tests


# -- the guide ---------------------------------------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_guide_documents_every_hook():
    """As datasette's test_docs: a hook added to automl/hookspecs.py without a section in the guide fails."""
    from automl import hookspecs

    hooks = {n for n in dir(hookspecs) if n.startswith("automl_") and callable(getattr(hookspecs, n))}
    documented = set(re.findall(r"^### (automl_\w+)$", _section(GUIDE.read_text(), "Hook reference"), re.M))
    assert hooks - documented == set(), "hooks without a section in docs/plugins.md"
    assert documented - hooks == set(), "sections in docs/plugins.md for hooks that do not exist"


def test_guide_minimal_plugin_passes_the_contract(tmp_path, monkeypatch):
    text = GUIDE.read_text()
    start = text.index("```python\n", text.index("<!-- minimal-plugin")) + len("```python\n")
    code = text[start:text.index("\n```", start)]
    (tmp_path / "guide_minimal_plugin.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    import guide_minimal_plugin

    from automl.testing import check_plugin

    report = check_plugin(guide_minimal_plugin, name="loans")
    assert report.ok, report.format()
    assert report.exercised["domains"] == {"loans"} and "loans_recall" in report.exercised["metrics"]
