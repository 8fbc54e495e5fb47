"""`automl.load(run_dir)`: restore the saved predictor of a run through the plugin that made it."""

from __future__ import annotations

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

    from automl.integrity import missing_plugin, read_meta, unreadable, verify

    path = Path(run_dir).expanduser()
    directory = path if (path / META).exists() else path / "predictor"
    meta_file = directory / META
    if not meta_file.exists():
        raise AutoMLError(f"no predictor in {path}: expected {meta_file} (is this the run_dir of a finished run?)")
    meta = PredictorMeta.from_json(read_meta(meta_file), str(meta_file))
    host = host if host is not None else PluginHost.installed()
    if meta.domain not in host.domains:
        raise missing_plugin(meta, "domain", meta.domain)
    for family in sorted({m.family for m in meta.members}):
        if family not in host.model_families:
            raise missing_plugin(meta, "model family", family)
    verify(directory, meta)  # every file is the one the run saved, before any is read
    cfg = RunConfig(domain=DomainConfig(name=meta.domain, options=dict(meta.domain_options or {})))
    fmt = resolve(cfg, host).pipeline.predictor_format()
    try:
        return fmt.load(directory, meta, host.model_families.get)
    except AutoMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file the checksums did not cover: one line naming it
        raise unreadable(directory, exc) from None
