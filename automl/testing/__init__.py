"""A test kit for plugin authors, shipped with automl (as Optuna ships `optuna.testing` and pytest `pytester`).

    from automl.testing import check_plugin

    report = check_plugin(my_plugin_module, name="claims")
    assert report.ok, report.format()

In pytest, the `automl_contract` fixture (`automl.testing.pytest_plugin`, registered with pytest when automl
is installed) runs the same check and fails the test with every problem listed. From the shell:
`automl plugins --check` checks every installed plugin. What the check covers: `automl.testing.contract`.
"""

from automl.testing.contract import ContractReport, check_plugin, check_plugins

__all__ = ["ContractReport", "check_plugin", "check_plugins"]
