"""A saved predictor that cannot lie: what it needs and what it is made of, checked before anything is loaded.

When a run saves its predictor, the host records in `predictor.json`:

- `files`: the SHA-256 of every other file of the predictor folder (weights, preprocessing, ids...), so that
  `automl.load` refuses a file that changed since (a flipped bit, a truncated copy, a hand edit) with one line
  naming it, instead of scoring with it;
- `requires`: the plugin distribution (and version) behind its domain and each model family, so that a
  predictor whose plugin is not installed names what to install.

The checks run before the predictor format reads a byte; a file that still cannot be read (a predictor saved
before checksums were recorded) is one line naming the file, never a raw SafetensorError or numpy error.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import AutoMLError, MissingPluginError

if TYPE_CHECKING:  # pragma: no cover
    from automl.host import PluginHost
    from automl.records import PredictorMeta

META = "predictor.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal(directory: Path, requires: dict[str, str]) -> None:
    """Record the SHA-256 of every file beside `predictor.json` and the plugins it needs, in `predictor.json`."""
    meta_file = directory / META
    raw = json.loads(meta_file.read_text())
    raw["files"] = {p.relative_to(directory).as_posix(): sha256(p)
                    for p in sorted(directory.rglob("*")) if p.is_file() and p.name != META}
    raw["requires"] = requires
    tmp = meta_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    tmp.replace(meta_file)  # never a half-written predictor.json


def requirements(host: "PluginHost", domain: str, families: list[str]) -> dict[str, str]:
    """Which plugin distribution provides the domain and each family: {"domain <name>": "dist==version", ...}."""
    out = {}
    for kind, registry, names in (("domain", host.domains, [domain]), ("model family", host.model_families, families)):
        for name in names:
            try:
                info = host.infos[registry.owner(name)]
            except (KeyError, AutoMLError):
                continue
            if info.distribution:
                out[f"{kind} {name}"] = f"{info.distribution}=={info.version}" if info.version else info.distribution
            elif info.name == "builtin":
                out[f"{kind} {name}"] = "vertical-automl"
    return out


def verify(directory: Path, meta: "PredictorMeta") -> None:
    """Refuse a predictor folder whose files are not the ones recorded, naming the first file that differs."""
    for name, expected in (meta.files or {}).items():
        path = directory / name
        if not path.is_file():
            raise AutoMLError(f"{path} is missing: the predictor needs it (restore the run directory from a copy, "
                              "or run the search again)")
        if sha256(path) != expected:
            raise AutoMLError(f"{path} is not the file this predictor saved (its SHA-256 differs from the one in "
                              f"{META}: changed or damaged since): restore it from a copy, or run the search again")


def missing_plugin(meta: "PredictorMeta", kind: str, name: str) -> MissingPluginError:
    """The error for a predictor whose domain or family is not registered: what to install."""
    needed = (meta.requires or {}).get(f"{kind} {name}")
    how = f"pip install '{needed}'" if needed else "install the plugin that registers it (`automl plugins` lists " \
                                                   "what is installed)"
    return MissingPluginError(f"this predictor needs {kind} {name!r}, which no installed plugin registers: {how}")


def unreadable(directory: Path, exc: BaseException) -> AutoMLError:
    """One line for a predictor file that fails to load, naming the file when the error does."""
    text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    named = next((p for p in sorted(directory.iterdir()) if p.name in text), None) if directory.is_dir() else None
    where = named or directory
    return AutoMLError(f"{where} cannot be read ({type(exc).__name__}: {text}): restore the run directory from a "
                       "copy, or run the search again")


def read_meta(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AutoMLError(f"{path} cannot be read ({type(exc).__name__}: {str(exc)[:200]}): run the search again "
                          "to save it anew") from None
