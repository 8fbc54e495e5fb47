"""Vertical AutoML: find the best deep-learning model for a business vertical.

    import automl
    result = automl.AutoML(domain="tabular", overrides=["search.n_trials=10"]).fit(data=df, target="y")
    predictor = automl.load(result.run_dir)

The package imports lazily: `import automl` and the CLI's `--help` never load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["AutoML", "PluginHost", "RunConfig", "hookimpl", "load", "run", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from automl.config import RunConfig
    from automl.plugins import PluginHost
    from automl.predictor import load
    from automl.run import run
    from automl.sdk import AutoML

_LAZY = {
    "AutoML": "automl.sdk",
    "PluginHost": "automl.plugins",
    "RunConfig": "automl.config",
    "load": "automl.predictor",
    "run": "automl.run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automl' has no attribute {name!r}")
