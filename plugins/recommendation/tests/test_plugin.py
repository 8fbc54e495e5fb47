"""The plugin as the host sees it: registrations, the contract check, a light import, `automl plugins`."""

from __future__ import annotations

import json
import subprocess

from automl.testing import check_plugin

from automl_recommendation import plugin


def test_registrations(host):
    assert host.problems == []
    domain = host.domain("recommendation")
    assert domain.default_dataset == "movielens" and domain.metrics["implicit"][:2] == ("ndcg@10", "hr@10")
    assert domain.metrics["regression"] == ("rmse", "mae")  # the host's own metrics, not copies
    assert set(domain.families) <= set(host.model_families.names())
    assert host.infos["recommendation"].registered["model_families"] == ["mf_bpr", "neumf", "sasrec"]


def test_contract_check_passes():
    report = check_plugin(plugin, name="recommendation")
    assert report.ok, report.format()
    assert report.exercised["model_families"] == {"mf_bpr", "neumf", "sasrec"}


def test_cli_lists_the_plugin(automl_cli, tmp_path):
    proc = subprocess.run([automl_cli, "plugins", "--json"], cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    mine = next(p for p in json.loads(proc.stdout) if p["name"] == "recommendation")
    assert mine["problems"] == [] and mine["distribution"] == "automl-recommendation"
    assert mine["registered"]["domains"] == ["recommendation"] and mine["registered"]["datasets"] == ["movielens"]
    assert {"mf_bpr", "neumf", "sasrec"} == set(mine["registered"]["model_families"])
    assert {"hr@10", "ndcg@10", "recall@10", "mrr", "coverage@10"} <= set(mine["registered"]["metrics"])
