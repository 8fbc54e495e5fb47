"""`automl.load(run_dir)`: restore the saved predictor of a run through the plugin that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError

if TYPE_CHECKING:  # pragma: no cover
    from automl.plugins import PluginHost

META = "predictor.json"


def load(run_dir: str | Path, host: Optional["PluginHost"] = None) -> Any:
    """Load the predictor saved in `run_dir` (or in its `predictor/` folder).

    Only data is read (JSON config and preprocessing, safetensors weights); the
    model's code comes from the installed plugin that registered its family, found by name.
    """
    from automl.plugins import PluginHost
    from automl.run import domain_options, make_pipeline

    path = Path(run_dir).expanduser()
    directory = path if (path / META).exists() else path / "predictor"
    meta_file = directory / META
    if not meta_file.exists():
        raise AutoMLError(f"no predictor in {path}: expected {meta_file} (is this the run_dir of a finished run?)")
    meta = json.loads(meta_file.read_text())
    host = host or PluginHost()
    domain = host.domain(meta["domain"])
    pipeline = make_pipeline(domain, domain_options(domain, meta.get("domain_options") or {}))
    return pipeline.load_predictor(str(directory), meta, host)
