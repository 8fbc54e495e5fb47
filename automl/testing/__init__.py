"""A test kit for plugin authors, shipped with automl (as Optuna ships `optuna.testing` and pytest `pytester`).

    from automl.testing import check_plugin, plugin_host, prepare_domain, sample_params

    report = check_plugin(my_plugin_module, name="claims")
    assert report.ok, report.format()

In pytest, automl's pytest plugin (`automl.testing.pytest_plugin`, registered with pytest when automl is
installed) adds the fixtures `automl_contract` (the same check, failing the test with every problem listed),
`automl_cli` (the installed `automl` command) and `automl_one_thread` (one torch thread per test). From the
shell: `automl plugins --check` checks every installed plugin. What the check covers: `automl.testing.contract`.
"""

from automl.testing.contract import ContractReport, check_plugin, check_plugins
from automl.testing.kit import DomainData, plugin_host, prepare_domain, sample_params

__all__ = ["ContractReport", "DomainData", "check_plugin", "check_plugins", "plugin_host", "prepare_domain",
           "sample_params"]
