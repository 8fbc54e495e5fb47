"""`automl.load(run_dir)`: restore the saved predictor of a run through the plugin that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError
from automl.records import PredictorMeta

if TYPE_CHECKING:  # pragma: no cover
    from automl.host import PluginHost

META = "predictor.json"


def load(run_dir: str | Path, host: Optional["PluginHost"] = None) -> Any:
    """Load the predictor saved in `run_dir` (or in its `predictor/` folder).

    Only data is read (JSON config and preprocessing, safetensors weights); the model's code comes from the
    installed plugin that registered its family, found by name. `host`: the plugins to look in (default:
    the installed ones).
    """
    from automl.config import DomainConfig, RunConfig
    from automl.host import PluginHost
    from automl.plan import resolve

    path = Path(run_dir).expanduser()
    directory = path if (path / META).exists() else path / "predictor"
    meta_file = directory / META
    if not meta_file.exists():
        raise AutoMLError(f"no predictor in {path}: expected {meta_file} (is this the run_dir of a finished run?)")
    try:
        raw = json.loads(meta_file.read_text())
    except ValueError as exc:
        raise AutoMLError(f"{meta_file} is not valid JSON ({exc}): run the search again to save it anew") from None
    meta = PredictorMeta.from_json(raw, str(meta_file))
    host = host if host is not None else PluginHost.installed()
    cfg = RunConfig(domain=DomainConfig(name=meta.domain, options=dict(meta.domain_options or {})))
    return resolve(cfg, host).pipeline.predictor_format().load(directory, meta, host.model_families.get)
