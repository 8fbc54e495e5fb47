"""Registration, installation, configuration and import cost of the medical plugin."""

from __future__ import annotations

import importlib.metadata

import pytest

from automl.api import ConfigError


def test_registers_domain_datasets_families_and_metric_without_problems(host):
    info = host.infos["medical"]
    assert info.problems == []
    assert info.registered == {
        "domains": ["medical"],
        "datasets": ["breast_biopsy", "breast_diagnostic", "flchain_mortality", "parkinsons_speech"],
        "model_families": ["snn", "gated_mlp"],
        "metrics": ["ece"],
    }
    domain = host.domain("medical")
    assert domain.default_dataset == "breast_biopsy"
    assert domain.families == ("mlp", "dcn", "snn", "gated_mlp")
    for names in domain.metrics.values():  # every metric the domain reports exists
        assert all(name in host.metrics for name in names)


def test_every_dataset_says_why_it_drops_columns(host):
    for name in ("breast_biopsy", "breast_diagnostic", "flchain_mortality", "parkinsons_speech"):
        spec = host.datasets.get(name)
        assert spec.domain == "medical" and spec.task == "binary" and spec.positive_class is not None
        assert spec.description and spec.source
        assert all(reason.strip() for reason in spec.drop_columns.values())
    flchain = host.datasets.get("flchain_mortality")
    assert {"futime", "chapter"} <= set(flchain.drop_columns)
    assert all("leakage" in flchain.drop_columns[c] for c in ("futime", "chapter"))
    assert host.datasets.get("breast_biopsy").id_columns == ("ID",)


def test_installed_entry_point_points_at_the_plugin_module():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="automl")}
    assert "medical" in eps, "automl-medical is not installed: pip install -e plugins/medical"
    assert eps["medical"].value == "automl_medical.plugin"
    assert eps["medical"].dist.name == "automl-medical"


def test_domain_config_turns_on_cross_validation_and_types_the_options(host):
    from automl import AutoML

    cfg = AutoML(domain="medical", overrides=["search.n_workers=0"], host=host).config
    assert cfg.search.cv.below_rows == 2000 and cfg.search.cv.folds == 5
    assert cfg.domain.name == "medical"
    assert cfg.domain.options["operating_point"] == "min_sensitivity" and cfg.domain.options["target"] == 0.9
    # the user's override still wins over the domain's default
    cfg = AutoML(domain="medical", overrides=["search.cv.below_rows=0"], host=host).config
    assert cfg.search.cv.below_rows == 0


@pytest.mark.parametrize("override, fragment", [
    ("domain.options.operating_point=best", "operating_point='best' is not valid"),
    ("domain.options.target=1.5", "domain.options.target=1.5"),
    ("domain.options.calibration=magic", "calibration='magic'"),
    ("+domain.options.nope=1", "nope"),
])
def test_bad_options_are_one_clear_line_before_any_data(host, tmp_path, override, fragment):
    from automl import AutoML

    with pytest.raises(ConfigError) as err:
        AutoML(domain="medical", overrides=[override], host=host).fit(run_dir=tmp_path / "D")
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "D").exists()


def test_passes_the_host_contract_check(automl_contract):
    from automl_medical import plugin

    report = automl_contract(plugin, name="medical")
    assert "medical" in report.exercised["domains"]
    assert {"snn", "gated_mlp"} <= set(report.exercised["model_families"])
    assert {"breast_biopsy", "parkinsons_speech"} <= set(report.exercised["datasets"])
