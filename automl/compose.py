"""Hydra composition shared by the CLI and the SDK: search path from plugins, domain checks, overrides."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from automl.errors import ConfigError, MissingPluginError
from automl.host import FIRST_PARTY, install_hint

if TYPE_CHECKING:  # pragma: no cover
    from omegaconf import DictConfig

    from automl.host import PluginHost

CONFIG_MODULE = "automl.conf"
CONFIG_NAME = "config"
_DOMAIN_ARG = re.compile(r"^\+{0,2}domain=(?P<value>.*)$")


def searchpath_override(host: "PluginHost") -> list[str]:
    dirs = host.config_dirs()
    return [f"hydra.searchpath=[{','.join(dirs)}]"] if dirs else []


def domain_configs(host: "PluginHost") -> set[str]:
    """Names of `domain/<name>.yaml` reachable on the search path (host conf plus plugin folders)."""
    names: set[str] = set()
    for entry in [f"pkg://{CONFIG_MODULE}", *host.config_dirs()]:
        folder = config_folder(entry)
        if folder is not None and (folder / "domain").is_dir():
            names |= {p.stem for p in (folder / "domain").iterdir() if p.suffix in (".yaml", ".yml")}
    return names


def config_folder(entry: str) -> Path | None:
    """The folder behind a Hydra search-path entry (``pkg://package.folder`` or a path), None if missing."""
    try:
        if entry.startswith("pkg://"):
            return Path(str(importlib.resources.files(entry[len("pkg://"):].replace("/", "."))))
        return Path(entry.removeprefix("file://"))
    except (ModuleNotFoundError, TypeError, ValueError):
        return None


def rewrite_domain_args(args: Iterable[str], host: "PluginHost") -> list[str]:
    """Check every `domain=` value before Hydra sees it.

    A domain nobody provides gets an error that names the plugin to install. A domain that a plugin
    registers without shipping a YAML of its own is composed from the generic tabular config with its name.
    """
    available, registered = domain_configs(host), set(host.domains.names())
    out: list[str] = []
    for arg in args:
        m = _DOMAIN_ARG.match(arg)
        if not m:
            out.append(arg)
            continue
        values = [v.strip() for v in m.group("value").split(",")]
        for v in values:
            if v in available or v in registered:
                continue
            if v in FIRST_PARTY:
                raise MissingPluginError(install_hint(v))
            raise ConfigError(f"unknown domain {v!r}: installed domains are "
                              f"{', '.join(sorted(available | registered))} (`automl plugins` lists them)")
        if len(values) == 1 and values[0] not in available:
            out += ["domain=tabular", f"domain.name={values[0]}"]
        else:
            out.append(arg)
    return out


def compose(host: "PluginHost", overrides: list[str]) -> "DictConfig":
    """Compose the run config as the CLI would, through Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = rewrite_domain_args(overrides, host) + searchpath_override(host)
    try:
        with initialize_config_module(CONFIG_MODULE, version_base=None):
            return hydra_compose(CONFIG_NAME, overrides=args)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_first_line(exc)) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
