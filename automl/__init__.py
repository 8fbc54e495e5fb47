"""Vertical AutoML: find the best deep-learning model for a business vertical.

    import automl
    result = automl.AutoML(domain="tabular", overrides=["search.n_trials=10"]).fit(data=df, target="y")
    predictor = automl.load(result.run_dir)

The package imports lazily: `import automl` and the CLI's `--help` never load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from automl.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["AutoML", "PluginHost", "RunConfig", "hookimpl", "load", "run", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.predictor import load
    from automl.run import run
    from automl.sdk import AutoML

_LAZY = {
    "AutoML": "automl.sdk",
    "PluginHost": "automl.host",
    "RunConfig": "automl.config",
    "load": "automl.predictor",
    "run": "automl.run",
}


def lazy_attributes(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports each of `names` from its module on first use (PEP 562), so that
    importing `module` stays light."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_attributes("automl", _LAZY)
