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


_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][\w.]*)=")


def config_keys() -> tuple[set[str], set[str]]:
    """Every key of the run config (`search.n_trials`...), and the keys below which any key is allowed (a
    domain's own options)."""
    import dataclasses
    import typing

    from automl.config import RunConfig

    keys, open_keys = set(), set()

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key, hint = f"{prefix}{f.name}", hints[f.name]
            keys.add(key)
            if dataclasses.is_dataclass(hint):
                walk(hint, key + ".")
            elif typing.get_origin(hint) is dict:
                open_keys.add(key)

    walk(RunConfig, "")
    return keys, open_keys


def check_override_keys(args: Iterable[str]) -> None:
    """An override of a key the config does not have is one line with the closest key, before Hydra answers
    with advice to append it (`+search.n_trial=3`), which would only fail later."""
    import difflib

    keys, open_keys = config_keys()
    for arg in args:
        m = _OVERRIDE.match(arg)
        if not m or m.group("key").startswith("hydra.") or arg.startswith(("+", "~")):
            continue
        key = m.group("key")
        if key in keys or any(key.startswith(k + ".") for k in open_keys):
            continue
        close = difflib.get_close_matches(key, sorted(keys), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown config key {key!r}: {hint}(`automl --help` shows every key and its value)")


_CONSTRAINTS = re.compile(r"^(?P<key>\+{0,2}search\.constraints)=\[(?P<items>[^\]]*)\]$")


def quote_constraints(args: list[str]) -> list[str]:
    """`search.constraints=[sensitivity>=0.95,latency_ms<=2]` as a user types it: Hydra's grammar does not take
    `>=` or `<` unquoted, so each item is quoted before Hydra parses it."""
    out = []
    for arg in args:
        m = _CONSTRAINTS.match(arg)
        if m and m.group("items").strip():
            items = [i.strip().strip("'\"") for i in m.group("items").split(",") if i.strip()]
            arg = f"{m.group('key')}=[" + ",".join(f"'{i}'" for i in items) + "]"
        out.append(arg)
    return out


def rewrite_domain_args(args: Iterable[str], host: "PluginHost") -> list[str]:
    """Check every override's key, and every `domain=` value, before Hydra sees them.

    A domain nobody provides gets an error that names the plugin to install. A domain that a plugin
    registers without shipping a YAML of its own is composed from the generic tabular config with its name.
    """
    args = quote_constraints(list(args))
    check_override_keys(args)
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
