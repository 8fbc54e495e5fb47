"""automl's pytest plugin (entry point `pytest11`, active wherever automl is installed): fixtures for plugin
authors, in the spirit of pytest's own `pytester`.

    def test_contract(automl_contract):
        from automl_claims import plugin

        report = automl_contract(plugin, name="claims")   # fails the test, listing every problem
        assert "claims" in report.exercised["domains"]

pytest imports this module in every session of every project that has automl installed: it imports nothing
but pytest until a fixture is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from automl.testing.contract import ContractReport


@pytest.fixture
def automl_contract() -> Callable[..., "ContractReport"]:
    """Run automl's plugin contract check: ``automl_contract(plugin, name=None, configs=3)``.

    `plugin` is a plugin module or object (checked in a hermetic host beside the built-in plugin only) or the
    name of an installed plugin. Fails the test with every problem found; returns the `ContractReport`, whose
    ``exercised`` names the domains, datasets, model families and metrics that ran on real data.
    """

    def check(plugin: Any, name: Optional[str] = None, **options: Any) -> "ContractReport":
        from automl.testing.contract import check_plugin

        report = check_plugin(plugin, name=name, **options)
        if not report.ok:
            pytest.fail(report.format(), pytrace=False)
        return report

    return check
