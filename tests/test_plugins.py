"""The plugin host: in-process registration, duplicates, broken plugins, typed registries."""

from __future__ import annotations

import types

import pytest

from automl import hookimpl
from automl.errors import MissingPluginError, PluginError, UnknownNameError
from automl.host import PluginHost
from automl.specs import DatasetSpec, MetricSpec


def _plugin(name: str, **hooks) -> types.SimpleNamespace:
    """A plugin object whose hooks return what the test says."""
    ns = types.SimpleNamespace(__name__=name)
    for hook, value in hooks.items():
        def impl(value=value):
            if isinstance(value, Exception):
                raise value
            return value

        impl.__name__ = hook
        setattr(ns, hook, hookimpl(impl))
    return ns


def _dataset(name: str) -> DatasetSpec:
    return DatasetSpec(name=name, loader=lambda: None, target="y")


def test_builtin_plugin_registers_through_the_same_hooks(host):
    info = host.infos["builtin"]
    assert info.ok
    assert host.domains.names() == ["tabular"]
    assert {"churn", "penguins", "ames"} <= set(host.datasets.names())
    assert "mlp" in host.model_families
    assert {"roc_auc", "log_loss", "rmse"} <= set(host.metrics.names())
    assert info.registered["model_families"] == ["mlp", "tabm", "ft_transformer", "dcn", "text_fusion"]
    assert host.datasets.owner("churn") == "builtin"


def test_in_process_registration():
    plugin = _plugin("mine", automl_register_datasets=[_dataset("loans")])
    host = PluginHost(entry_points=False, plugins=[("mine", plugin)])
    assert host.datasets.get("loans").target == "y"
    assert host.infos["mine"].registered == {"datasets": ["loans"]}


def test_duplicate_name_names_both_plugins_and_is_unusable():
    a = _plugin("a", automl_register_datasets=[_dataset("loans")])
    b = _plugin("b", automl_register_datasets=[_dataset("loans"), _dataset("cards")])
    host = PluginHost(entry_points=False, plugins=[("a", a), ("b", b)])
    with pytest.raises(PluginError) as err:
        host.datasets.get("loans")
    assert "'a'" in str(err.value) and "'b'" in str(err.value)
    assert any("'a' and 'b'" in p for p in host.infos["a"].problems)
    assert any("'a' and 'b'" in p for p in host.infos["b"].problems)
    assert host.datasets.get("cards").name == "cards"  # the rest of plugin b still works


def test_builtin_names_are_reserved():
    clash = _plugin("clash", automl_register_metrics=[
        MetricSpec("roc_auc", "maximize", {"binary"}, lambda y, p: 0.0)])
    host = PluginHost(entry_points=False, plugins=[("clash", clash)])
    assert host.metrics.owner("roc_auc") == "builtin"
    assert any("built-in name" in p for p in host.infos["clash"].problems)


def test_raising_hook_is_recorded_and_others_keep_working():
    broken = _plugin("broken", automl_register_datasets=RuntimeError("no disk"))
    good = _plugin("good", automl_register_datasets=[_dataset("fine")])
    host = PluginHost(entry_points=False, plugins=[("broken", broken), ("good", good)])
    assert host.datasets.get("fine")
    assert host.infos["broken"].problems == ["hook automl_register_datasets raised RuntimeError: no disk"]
    assert ("broken", "hook automl_register_datasets raised RuntimeError: no disk") in host.problems


def test_a_plugin_with_a_failed_hook_is_skipped_whole(caplog):
    """Its dataset registered fine, its domain's hook raised: nothing of it is used (the dataset would otherwise
    run under the built-in tabular domain, silently)."""
    half = _plugin("half", automl_register_datasets=[_dataset("claims")],
                   automl_register_domains=RuntimeError("no licence server"))
    with caplog.at_level("WARNING"):
        host = PluginHost(entry_points=False, plugins=[("half", half)])
    assert "claims" not in host.datasets
    assert not host.infos["half"].loaded and host.infos["half"].registered == {"datasets": ["claims"]}
    assert any("skipped whole" in r.message and "no licence server" in r.message for r in caplog.records)
    assert host.pm.get_plugin("half") is None  # none of its other hooks runs either


def test_wrong_return_type_is_reported():
    wrong = _plugin("wrong", automl_register_datasets={"name": "x"}, automl_register_metrics=["roc"])
    host = PluginHost(entry_points=False, plugins=[("wrong", wrong)])
    problems = host.infos["wrong"].problems
    assert any("returned dict; expected a list of DatasetSpec" in p for p in problems)
    assert any("item of type str; expected MetricSpec" in p for p in problems)


def test_misspelled_hook_is_reported_with_a_suggestion():
    typo = _plugin("typo", automl_register_dataset=[_dataset("x")])
    host = PluginHost(entry_points=False, plugins=[("typo", typo)])
    assert any("unknown hook 'automl_register_dataset'" in p and "automl_register_datasets" in p
               for p in host.infos["typo"].problems)


def test_broken_entry_point_is_skipped(monkeypatch):
    """An installed plugin that fails to import is listed with its error; the host still works."""
    import importlib.metadata

    class FakeDist:
        name, version = "automl-broken", "9.9"

    class FakeEntryPoint:
        name, value, group, dist = "broken", "automl_broken_does_not_exist", "automl", FakeDist()

        def load(self):
            import automl_broken_does_not_exist  # noqa: F401

    real = importlib.metadata.entry_points

    def fake(**kw):
        return [FakeEntryPoint()] if kw.get("group") == "automl" else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    host = PluginHost()
    info = host.infos["broken"]
    assert not info.loaded and info.version == "9.9" and info.distribution == "automl-broken"
    assert "ModuleNotFoundError" in info.problems[0]
    assert host.domains.get("tabular")


def test_unknown_names_list_what_is_available(host):
    with pytest.raises(UnknownNameError, match="unknown dataset 'chrun'. Did you mean 'churn'"):
        host.datasets.get("chrun")


def test_missing_first_party_domain_says_how_to_install(host):
    with pytest.raises(MissingPluginError, match="pip install plugins/finance_risk"):
        host.domain("finance_risk")


def test_specs_validate_their_fields():
    with pytest.raises(ValueError, match="direction"):
        MetricSpec("m", "up", {"binary"}, lambda y, p: 0.0)
    with pytest.raises(ValueError, match="not valid"):
        _dataset("Bad Name")
    from automl.specs import ModelFamily

    with pytest.raises(ValueError, match="exactly one of network= or build="):
        ModelFamily("f", {"binary"}, search_space=lambda t, i: {})


def test_every_hookspec_is_documented():
    from automl import hookspecs

    hooks = [getattr(hookspecs, n) for n in dir(hookspecs) if n.startswith("automl_")]
    assert len(hooks) >= 7
    for hook in hooks:
        assert hook.__doc__ and len(hook.__doc__.strip()) > 40, f"{hook.__name__} lacks documentation"
