"""The static half of the contract check: names, types and cross-references of what one plugin registered.

The host already rejects items of the wrong type, invalid names and duplicates while it builds its registries
(`PluginHost`); these checks catch what a registry cannot see on its own: a domain naming a metric or family
nobody registered, a metric that does not apply to the task it is listed for, a config folder that is missing.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING

from automl.compose import config_folder
from automl.tasks import TABULAR_TASKS

if TYPE_CHECKING:  # pragma: no cover
    from automl.host import PluginHost, Registry
    from automl.specs import DomainSpec


KINDS = ("domains", "datasets", "model_families", "metrics")


def owned_specs(host: "PluginHost", plugin: str) -> dict[str, list]:
    """The specs `plugin` registered, per kind. A name two plugins registered is out of the registry (the host
    reports the conflict), so it is left out here."""
    registered = host.infos[plugin].registered
    return {kind: [host.registries[kind].get(n) for n in registered.get(kind, []) if n in host.registries[kind]]
            for kind in KINDS}


def registration_problems(host: "PluginHost", plugin: str) -> list[str]:
    """Problems with the registrations of `plugin` (an entry of `host.infos`)."""
    owned = owned_specs(host, plugin)
    problems: list[str] = []
    for domain in owned["domains"]:
        problems += _domain_problems(host, domain)
    for spec in owned["datasets"]:
        domain = host.domains.get(spec.domain) if spec.domain in host.domains else None
        if spec.task is not None and domain is not None and spec.task not in domain.metrics:
            problems.append(f"dataset {spec.name!r} has task {spec.task!r}, which its domain {domain.name!r} "
                            "does not serve")
    for family in owned["model_families"]:
        if not family.tasks:
            problems.append(f"model family {family.name!r} serves no task: give it tasks={{...}}")
        if not callable(family.network or family.build):
            problems.append(f"model family {family.name!r}: network= / build= must be callable")
        if family.accepts is not None and not callable(family.accepts):
            problems.append(f"model family {family.name!r}: accepts= must be callable")
    for metric in owned["metrics"]:
        if not metric.tasks:
            problems.append(f"metric {metric.name!r} applies to no task: give it tasks={{...}}")
        if not callable(metric.fn):
            problems.append(f"metric {metric.name!r}: fn must be callable as fn(y_true, y_score) -> float")
    problems += _config_problems(host, plugin)
    return problems


def _domain_problems(host: "PluginHost", domain: "DomainSpec") -> list[str]:
    where = f"domain {domain.name!r}"
    problems = []
    for task, names in domain.metrics.items():
        if not names:
            problems.append(f"{where} lists no metric for {task} tasks")
        for name in names:
            if name not in host.metrics:
                problems.append(f"{where}: metric {name!r} is not registered.{_did_you_mean(name, host.metrics)}")
            elif task not in host.metrics.get(name).tasks:
                problems.append(f"{where}: metric {name!r} does not apply to {task} tasks (it applies to "
                                f"{', '.join(sorted(host.metrics.get(name).tasks))})")
        if not any(task in f.tasks and (domain.families is None or f.name in domain.families)
                   for f in host.model_families):
            problems.append(f"{where}: no registered model family it allows serves {task} tasks")
        if task not in TABULAR_TASKS and domain.pipeline is None:
            problems.append(f"{where} serves {task} tasks but gives no pipeline: the host's tabular pipeline "
                            f"serves only {', '.join(sorted(TABULAR_TASKS))}")
    for name in domain.families or ():
        if name not in host.model_families:
            problems.append(f"{where}: model family {name!r} is not registered."
                            f"{_did_you_mean(name, host.model_families)}")
    if domain.default_dataset is not None and domain.default_dataset not in host.datasets:
        problems.append(f"{where}: default dataset {domain.default_dataset!r} is not registered."
                        f"{_did_you_mean(domain.default_dataset, host.datasets)}")
    for attr in ("pipeline", "evaluate"):
        if getattr(domain, attr) is not None and not callable(getattr(domain, attr)):
            problems.append(f"{where}: {attr}= must be callable")
    if domain.options is not None and not (isinstance(domain.options, type)
                                           and dataclasses.is_dataclass(domain.options)):
        problems.append(f"{where}: options= must be a dataclass (the type of domain.options), "
                        f"got {type(domain.options).__name__}")
    return problems


def _config_problems(host: "PluginHost", plugin: str) -> list[str]:
    """Every config folder the plugin ships exists, and each `domain/<name>.yaml` names a registered domain."""
    problems = []
    for impl in host.pm.hook.automl_config_dirs.get_hookimpls():
        if impl.plugin_name != plugin:
            continue
        try:
            entries = impl.function() or []
        except Exception:  # noqa: BLE001 - recorded by the host as a load problem already
            continue
        for entry in [entries] if isinstance(entries, str) else entries:
            folder = config_folder(str(entry))
            if folder is None or not folder.is_dir():
                problems.append(f"config folder {entry!r} does not exist (pkg:// needs a package with an __init__.py "
                                "that ships its YAML files as package data)")
                continue
            for path in sorted((folder / "domain").glob("*.yaml")):
                if path.stem not in host.domains:
                    problems.append(f"config {entry}/domain/{path.name} is for domain {path.stem!r}, which no "
                                    "installed plugin registers")
    return problems


def _did_you_mean(name: str, registry: "Registry") -> str:
    close = difflib.get_close_matches(name, registry.names(), n=1)
    return f" Did you mean {close[0]!r}?" if close else f" Registered: {', '.join(registry.names()) or 'none'}"
