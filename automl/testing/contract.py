"""The plugin contract check: what `automl plugins --check` runs and what plugin authors call in their tests.

    from automl.testing import check_plugin

    def test_contract():
        report = check_plugin(my_plugin_module, name="claims")  # a hermetic host: the built-in plugin + yours
        assert report.ok, report.format()

In pytest the `automl_contract` fixture (automl's pytest plugin) does the same and fails the test with every
problem listed. Like Optuna's contract suites for samplers and storages, the check exercises the plugin
through the interface the host uses, on real data:

1. registrations: names and types (the host's registries), plus cross-references: metrics and families a
   domain names exist and apply to its tasks, its default dataset exists, config folders exist;
2. importing the plugin's module and calling its registration hooks imports nothing heavy (a fresh interpreter
   per plugin), as `automl plugins` does both;
3. every dataset's loader returns a table with the columns its spec names;
4. every domain on its default dataset (`workbench`): config composed, data prepared, each allowed family's
   search space sampled for a few trials, each model built and trained one step on a real batch, predictions
   on validation rows scored by every metric of the domain;
5. families and metrics that no domain uses get the same on a compatible domain's data where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

from automl.errors import PluginError

if TYPE_CHECKING:  # pragma: no cover
    from automl.host import PluginHost
    from automl.specs import MetricSpec, ModelFamily
    from automl.testing.workbench import Workbench

#: Sampled configurations per family and domain, each built and trained one step.
CONFIGS = 3


@dataclass
class ContractReport:
    """What the check found and what it exercised.

    `problems` maps each plugin to every problem: those the host recorded while loading it (import errors,
    raising hooks, wrong types, duplicate names) and those the check found. `findings` holds the check's own.
    `exercised` names, per kind (domains, datasets, model_families, metrics), what ran on real data and passed.
    """

    problems: dict[str, list[str]] = field(default_factory=dict)
    findings: dict[str, list[str]] = field(default_factory=dict)
    exercised: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def format(self) -> str:
        if self.ok:
            done = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in self.exercised.items())
            return f"automl contract check passed ({done} exercised)"
        lines = ["automl contract check failed:"]
        for plugin, problems in self.problems.items():
            lines += [f"  plugin {plugin!r}: {p}" for p in problems]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    __str__ = format


def check_plugins(host: "PluginHost", plugins: Optional[Iterable[str]] = None, *, configs: int = CONFIGS,
                  seed: int = 0) -> dict[str, list[str]]:
    """The check's own findings per plugin (what `automl plugins --check` adds to the load problems it lists).

    :param plugins: names in ``host.infos`` to check (default: all); other plugins serve only as context.
    """
    return run_check(host, plugins, configs=configs, seed=seed).findings


def check_plugin(plugin: Any, name: Optional[str] = None, *, configs: int = CONFIGS,
                 seed: int = 0) -> ContractReport:
    """Check one plugin: an installed one by its entry-point name (a string), or a plugin module or object,
    registered in a hermetic host beside the built-in plugin only (so other installed plugins cannot interfere).
    """
    from automl.host import PluginHost

    if isinstance(plugin, str):
        host = PluginHost.installed()
        if plugin not in host.infos:
            raise PluginError(f"no installed plugin is named {plugin!r} (installed: {', '.join(host.infos)}): "
                              "install it, or pass the plugin module itself")
        name = plugin
    else:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        host = PluginHost(entry_points=False, plugins=[(name, plugin)])
    host.config_dirs()  # records a raising automl_config_dirs hook as a load problem
    return run_check(host, [name], configs=configs, seed=seed)


def run_check(host: "PluginHost", plugins: Optional[Iterable[str]] = None, *, configs: int = CONFIGS,
              seed: int = 0) -> ContractReport:
    """Run every stage of the check for `plugins` (default: all of `host.infos`) and return the report."""
    from automl.testing.imports import ImportProbe
    from automl.testing.registrations import registration_problems
    from automl.testing.workbench import Workbench

    names = list(host.infos) if plugins is None else list(plugins)
    unknown = [n for n in names if n not in host.infos]
    if unknown:
        raise PluginError(f"no plugin named {unknown[0]!r} is registered (registered: {', '.join(host.infos)})")
    report = ContractReport()

    def record(plugin: str, problem: str) -> None:
        found = report.findings.setdefault(plugin, [])
        if problem not in found:
            found.append(problem)

    host.registries  # noqa: B018 - registration problems are recorded while the registries are built
    targets = [n for n in names if host.infos[n].loaded]
    modules = {n: host.infos[n].module.split(":")[0] for n in targets if host.infos[n].module}
    probe = ImportProbe(modules)  # runs in other processes while the rest of the check runs here
    try:
        for plugin in targets:
            for problem in registration_problems(host, plugin):
                record(plugin, problem)
        workbench = Workbench(host, record, seed=seed, configs=configs)
        _exercise(workbench, targets)
        heavy = probe.results()
    except BaseException:
        probe.kill()
        raise
    for plugin, libraries in heavy.items():
        record(plugin, f"importing {modules[plugin]} and calling its registration hooks imports "
                       f"{', '.join(libraries)}, which slows `automl plugins` and `automl --help` for everyone: "
                       "import them inside the functions that need them")
    report.exercised, report.notes = workbench.exercised, workbench.notes
    for plugin in dict.fromkeys(names + list(report.findings)):
        problems = list(dict.fromkeys(host.infos[plugin].problems + report.findings.get(plugin, [])))
        if problems:
            report.problems[plugin] = problems
    return report


def _exercise(workbench: "Workbench", targets: list[str]) -> None:
    """Stages 3 to 5 on real data: datasets, domains, then what no domain used."""
    from automl.testing.registrations import owned_specs
    from automl.training.engine import torch_threads

    owned = {plugin: owned_specs(workbench.host, plugin) for plugin in targets}
    with torch_threads(1):  # the check's models are tiny: one thread does their steps fastest
        for plugin in targets:
            for spec in owned[plugin]["datasets"]:
                workbench.check_dataset(spec)
        for plugin in targets:
            for domain in owned[plugin]["domains"]:
                workbench.exercise_domain(domain)
        for plugin in targets:  # families no domain searched: on some compatible domain's data
            for family in owned[plugin]["model_families"]:
                if ("model_families", family.name) not in workbench.tried:
                    _exercise_unused_family(workbench, family)
        for plugin in targets:  # metrics no domain reported: on predictions of a compatible domain
            for metric in owned[plugin]["metrics"]:
                if ("metrics", metric.name) not in workbench.tried:
                    _exercise_unused_metric(workbench, metric)


def _exercise_unused_family(workbench: "Workbench", family: "ModelFamily") -> None:
    place = workbench.compatible_bench(family.tasks, family.accepts)
    if place is None:
        workbench.notes.append(f"model family {family.name!r}: no installed domain has data of a task it "
                               f"serves ({', '.join(sorted(family.tasks))}); not trained")
        return
    workbench.exercise_family(place, family)


def _exercise_unused_metric(workbench: "Workbench", metric: "MetricSpec") -> None:
    place = workbench.compatible_bench(metric.tasks)
    if place is not None and place.scores is None and place.plan.families:
        workbench.exercise_family(place, place.plan.families[0])
    if place is None or place.scores is None:
        workbench.notes.append(f"metric {metric.name!r}: no installed domain produced predictions of a task it "
                               f"applies to ({', '.join(sorted(metric.tasks))}); not computed")
        return
    workbench.exercise_metric(place, metric, place.scores)
