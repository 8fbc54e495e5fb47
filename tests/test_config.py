"""Config typed at the boundary: Hydra composition, overrides, validation with one-line errors."""

from __future__ import annotations

import pytest

from automl.compose import compose
from automl.config import RunConfig
from automl.errors import ConfigError, MissingPluginError


def test_compose_gives_typed_config_with_overrides(host):
    cfg = RunConfig.from_container(compose(host, ["search.n_trials=7", "trainer.max_epochs=2", "dataset=penguins"]))
    assert isinstance(cfg, RunConfig)
    assert cfg.search.n_trials == 7 and cfg.trainer.max_epochs == 2 and cfg.dataset == "penguins"
    assert cfg.domain.name == "tabular" and cfg.search.sampler == "tpe"


def test_unknown_key_is_one_line(host):
    with pytest.raises(ConfigError) as err:
        compose(host, ["search.n_trail=3"])
    assert "n_trail" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("override", "message"), [
    ("search.sampler=grid", "search.sampler='grid' is not valid: use one of tpe, random"),
    ("search.pruner=always", "search.pruner='always' is not valid"),
    ("trainer.engine=turbo", "trainer.engine='turbo' is not valid"),
    ("search.n_trials=0", "search.n_trials=0 must be at least 1"),
    ("data.test_size=1.5", "data.test_size=1.5 must be a fraction from 0"),
    ("search.n_trials=abc", "search.n_trials"),
    ("search.pick=random", "search.pick='random' is not valid: use one of first, balanced"),
    ("search.objectives=[roc_auc]", "needs two or more metrics"),
    ("privacy.epsilon=-1", "privacy.epsilon=-1.0 must be positive"),
])
def test_invalid_values_are_explained(host, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig.from_container(compose(host, [override]))


def test_no_budget_is_refused(host):
    with pytest.raises(ConfigError, match="no budget"):
        RunConfig.from_container(compose(host, ["search.n_trials=null"]))


def test_missing_plugin_domain_names_the_plugin(host):
    with pytest.raises(MissingPluginError, match="automl-medical.*pip install plugins/medical"):
        compose(host, ["domain=medical"])


def test_unknown_domain_lists_installed(host):
    with pytest.raises(ConfigError, match="unknown domain 'insurance': installed domains are tabular"):
        compose(host, ["domain=insurance"])


def test_registered_domain_without_yaml_composes(host):
    from automl import hookimpl
    from automl.host import PluginHost
    from automl.specs import DomainSpec

    class Claims:
        @hookimpl
        def automl_register_domains(self):
            return [DomainSpec("claims", metrics={"binary": ("roc_auc",)})]

    h = PluginHost(entry_points=False, plugins=[("claims", Claims())])
    cfg = RunConfig.from_container(compose(h, ["domain=claims"]))
    assert cfg.domain.name == "claims"
