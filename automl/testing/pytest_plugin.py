"""automl's pytest plugin (entry point `pytest11`, active wherever automl is installed): fixtures for plugin
authors, in the spirit of pytest's own `pytester`.

    def test_contract(automl_contract):
        from automl_claims import plugin

        report = automl_contract(plugin, name="claims")   # fails the test, listing every problem
        assert "claims" in report.exercised["domains"]

    def test_cli(automl_cli):                              # the installed `automl` command
        subprocess.run([automl_cli, "plugins"], check=True)

`automl_one_thread` runs a test with one torch thread (and OMP_NUM_THREADS=1 for the processes it starts):
tests share a few cores with whatever else runs. Use it per test, or for a whole suite with pytest's
`usefixtures = automl_one_thread` ini option.

pytest imports this module in every session of every project that has automl installed: it imports nothing
but pytest until a fixture is used, and no fixture here is autouse.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

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


@pytest.fixture(scope="session")
def automl_cli() -> str:
    """The installed `automl` console script, run the way a user runs it."""
    exe = Path(sys.executable).with_name("automl")
    if not exe.exists():
        pytest.fail(f"the automl command is missing at {exe}: install automl into this environment", pytrace=False)
    return str(exe)


@pytest.fixture
def automl_one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One torch thread in this process, and OMP_NUM_THREADS=1 for the processes the test starts (unless set)."""
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
