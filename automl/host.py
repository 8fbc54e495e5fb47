"""The plugin host: discovers plugins, calls their registration hooks, owns the typed registries.

`PluginHost` is an ordinary object (no module globals): a test builds one with exactly the plugins it wants,
the CLI and SDK build one from the installed entry points. Loading is defensive, in the style of sqlfluff
and pytest: every entry point is imported on its own, every hook implementation is called on its own, and a
failure is recorded against the plugin that caused it, so one broken plugin never takes the others down.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
from dataclasses import dataclass, field
from typing import Any, Generic, Iterable, Iterator, TypeVar

import pluggy

from automl import hookspecs
from automl.errors import MissingPluginError, PluginError, UnknownNameError
from automl.specs import DatasetSpec, DomainSpec, MetricSpec, ModelFamily

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "automl"
BUILTIN = "builtin"

#: First-party plugins, so that a missing one gets an install hint instead of a bare "unknown domain".
FIRST_PARTY = {
    "finance_risk": ("automl-finance-risk", "plugins/finance_risk"),
    "medical": ("automl-medical", "plugins/medical"),
    "recommendation": ("automl-recommendation", "plugins/recommendation"),
}

T = TypeVar("T")


def install_hint(domain: str) -> str:
    if domain in FIRST_PARTY:
        dist, path = FIRST_PARTY[domain]
        return (
            f"domain {domain!r} is provided by the plugin {dist!r}, which is not installed: "
            f"run `pip install {path}` from the automl source tree (or `pip install {dist}`)"
        )
    return (
        f"no installed plugin provides domain {domain!r}: install the plugin that provides it "
        "(`automl plugins` lists what is installed)"
    )


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


class Registry(Generic[T]):
    """Name -> spec, remembering which plugin registered each name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}
        self._conflicts: dict[str, list[str]] = {}

    def add(self, item: T, owner: str) -> str | None:
        """Add `item`; return a problem description if its name is taken, else None."""
        name = item.name  # type: ignore[attr-defined]
        if name in self._conflicts:
            self._conflicts[name].append(owner)
            return self._conflict_message(name)
        if name in self._items:
            first = self._owners[name]
            if first == BUILTIN:
                return (
                    f"{self.kind} {name!r} is a built-in name; plugin {owner!r} registered it again and its "
                    f"{self.kind} was ignored: rename it in plugin {owner!r}"
                )
            self._conflicts[name] = [first, owner]
            del self._items[name], self._owners[name]
            return self._conflict_message(name)
        self._items[name] = item
        self._owners[name] = owner
        return None

    def _conflict_message(self, name: str) -> str:
        owners = " and ".join(repr(o) for o in self._conflicts[name])
        return (
            f"{self.kind} {name!r} is registered by plugins {owners}: it cannot be used until one of them is "
            "uninstalled or renames it"
        )

    def get(self, name: str) -> T:
        if name in self._conflicts:
            raise PluginError(self._conflict_message(name))
        try:
            return self._items[name]
        except KeyError:
            available = ", ".join(sorted(self._items)) or "none"
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{_suggest(name, self._items)} Available: {available}"
            ) from None

    def conflicting_owners(self, name: str) -> list[str]:
        return list(self._conflicts.get(name, []))

    def owner(self, name: str) -> str:
        return self._owners[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class PluginInfo:
    """What `automl plugins` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    load_problems: list[str] = field(default_factory=list)
    registry_problems: list[str] = field(default_factory=list)
    #: Names it registered that another plugin (or the host) also registered: those names are unusable, the
    #: rest of the plugin works.
    conflicts: list[str] = field(default_factory=list)
    loaded: bool = True

    @property
    def problems(self) -> list[str]:
        return self.load_problems + self.registry_problems + self.conflicts

    @property
    def failed(self) -> bool:
        """A hook raised or returned the wrong thing, or the plugin did not import: it is skipped whole."""
        return bool(self.load_problems or self.registry_problems)

    @property
    def ok(self) -> bool:
        return self.loaded and not self.problems


_KINDS: tuple[tuple[str, str, type], ...] = (
    ("domains", "automl_register_domains", DomainSpec),
    ("datasets", "automl_register_datasets", DatasetSpec),
    ("model_families", "automl_register_model_families", ModelFamily),
    ("metrics", "automl_register_metrics", MetricSpec),
)
_SINGULAR = {"domains": "domain", "datasets": "dataset", "model_families": "model family", "metrics": "metric"}


class PluginHost:
    """Builds a pluggy manager, loads plugins and exposes typed registries.

    :param entry_points: discover installed plugins through the ``automl`` entry-point group.
    :param plugins: plugin objects or modules to register in-process (tests, notebooks), as
        ``obj`` or ``(name, obj)``.
    :param builtin: register the host's own building blocks (`automl.builtin`).
    """

    @classmethod
    def installed(cls) -> "PluginHost":
        """The host of an installed automl: the built-in plugin and every plugin installed as a distribution."""
        return cls()

    def __init__(self, *, entry_points: bool = True, plugins: Iterable[Any] = (), builtin: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] | None = None
        if builtin:
            from automl import builtin as builtin_plugin

            self.register(builtin_plugin, name=BUILTIN, version=_version("vertical-automl"))
        if entry_points:
            self._load_entry_points()
        for item in plugins:
            name, obj = item if isinstance(item, tuple) else (None, item)
            self.register(obj, name=name)
        self.registries  # noqa: B018 - call every registration hook now, so problems are known up front

    # -- loading -----------------------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                module=ep.value,
            )
            if ep.name in self.infos:
                info.loaded = False
                info.load_problems.append(f"another plugin is already registered under the name {ep.name!r}")
                self.infos[f"{ep.name} ({info.distribution})"] = info
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, recorded and skipped
                info.loaded = False
                info.load_problems.append(f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}")
                self.infos[ep.name] = info
                log.warning("plugin %r (%s) skipped: %s", ep.name, info.distribution, info.load_problems[-1])
                continue
            self._register(obj, info)

    def register(self, plugin: Any, name: str | None = None, version: str | None = None) -> PluginInfo:
        """Register a plugin object or module in-process."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = PluginInfo(name=name, version=version, module=getattr(plugin, "__name__", type(plugin).__name__))
        return self._register(plugin, info)

    def _register(self, plugin: Any, info: PluginInfo) -> PluginInfo:
        self.infos[info.name] = info
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors name the hook; keep the message
            info.loaded = False
            info.load_problems.append(f"rejected by the plugin manager: {exc}")
            return info
        known = {h for h in dir(hookspecs) if h.startswith("automl_")}
        for attr in dir(plugin):
            if attr.startswith("automl_") and attr not in known and callable(getattr(plugin, attr, None)):
                info.load_problems.append(f"unknown hook {attr!r}.{_suggest(attr, known)}")
        self._registries = None  # rebuilt on next access
        return info

    # -- registries --------------------------------------------------------------------------------------

    @property
    def registries(self) -> dict[str, Registry]:
        if self._registries is None:
            self._registries = self._build_registries()
        return self._registries

    def _build_registries(self) -> dict[str, Registry]:
        """Call every registration hook. A plugin that failed (a hook that raised or returned the wrong type, an
        unknown hook, an import error) is skipped whole: unregistered, so that none of what it did register is
        used under another plugin's name or the built-in domain, and none of its other hooks runs; then the
        registries are built again without it. A name two plugins register is unusable; their other names
        work."""
        while True:
            registries = self._collect_registries()
            broken = [info for name, info in self.infos.items()
                      if name != BUILTIN and info.failed and self.pm.get_plugin(name) is not None]
            if not broken:
                return registries
            for info in broken:
                self._skip(info)

    def _skip(self, info: PluginInfo) -> None:
        self.pm.unregister(name=info.name)
        info.loaded = False
        log.warning("plugin %r%s skipped whole (nothing it registers is used): %s; fix it or uninstall it",
                    info.name, f" ({info.distribution})" if info.distribution else "", info.problems[0])

    def _collect_registries(self) -> dict[str, Registry]:
        for name, info in self.infos.items():
            if self.pm.get_plugin(name) is not None:  # a skipped plugin keeps what it registered, for the listing
                info.registered, info.registry_problems, info.conflicts = {}, [], []
        registries: dict[str, Registry] = {}
        for kind, hook_name, spec_type in _KINDS:
            registry: Registry = Registry(_SINGULAR[kind])
            # Builtin first, so its names are reserved; then plugins in registration order.
            impls = sorted(getattr(self.pm.hook, hook_name).get_hookimpls(), key=lambda i: i.plugin_name != BUILTIN)
            for impl in impls:
                info = self.infos[impl.plugin_name]
                for item in self._call(impl, info, hook_name, spec_type):
                    problem = registry.add(item, impl.plugin_name)
                    if problem:
                        for owner in {impl.plugin_name, *registry.conflicting_owners(item.name)}:
                            problems = self.infos[owner].conflicts
                            if problem not in problems:
                                problems.append(problem)
                    else:
                        info.registered.setdefault(kind, []).append(item.name)
            registries[kind] = registry
        return registries

    @staticmethod
    def _call(impl: Any, info: PluginInfo, hook_name: str, spec_type: type) -> list:
        try:
            result = impl.function()
        except Exception as exc:  # noqa: BLE001 - a raising hook is the plugin's fault: record, skip
            info.registry_problems.append(f"hook {hook_name} raised {type(exc).__name__}: {exc}")
            log.warning("plugin %r: hook %s raised %s: %s", info.name, hook_name, type(exc).__name__, exc)
            return []
        if result is None:
            return []
        if isinstance(result, spec_type):
            result = [result]
        if not isinstance(result, (list, tuple)):
            info.registry_problems.append(
                f"hook {hook_name} returned {type(result).__name__}; expected a list of {spec_type.__name__}"
            )
            return []
        good = [r for r in result if isinstance(r, spec_type)]
        for bad in (r for r in result if not isinstance(r, spec_type)):
            info.registry_problems.append(
                f"hook {hook_name} returned an item of type {type(bad).__name__}; expected {spec_type.__name__}"
            )
        return good

    @property
    def domains(self) -> Registry[DomainSpec]:
        return self.registries["domains"]

    @property
    def datasets(self) -> Registry[DatasetSpec]:
        return self.registries["datasets"]

    @property
    def model_families(self) -> Registry[ModelFamily]:
        return self.registries["model_families"]

    @property
    def metrics(self) -> Registry[MetricSpec]:
        return self.registries["metrics"]

    def domain(self, name: str) -> DomainSpec:
        """Look a domain up, with an install hint when a known plugin provides it."""
        try:
            return self.domains.get(name)
        except UnknownNameError:
            if name in FIRST_PARTY:
                raise MissingPluginError(install_hint(name)) from None
            raise

    # -- other hooks -------------------------------------------------------------------------------------

    def config_dirs(self) -> list[str]:
        """Hydra search-path entries from every plugin that ships configs."""
        dirs: list[str] = []
        for impl in self.pm.hook.automl_config_dirs.get_hookimpls():
            info = self.infos[impl.plugin_name]
            try:
                got = impl.function() or []
            except Exception as exc:  # noqa: BLE001
                info.load_problems.append(f"hook automl_config_dirs raised {type(exc).__name__}: {exc}")
                if info.name != BUILTIN:
                    self._skip(info)
                    self._registries = None  # rebuilt without it
                continue
            if isinstance(got, str):
                got = [got]
            dirs.extend(str(d) for d in got)
        return dirs

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin; an observer that raises is logged, never fatal."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # noqa: BLE001
                log.warning("plugin %r: observer %s raised %s: %s", impl.plugin_name, hook_name,
                            type(exc).__name__, exc)

    @property
    def problems(self) -> list[tuple[str, str]]:
        """(plugin, problem) for every recorded problem, after building the registries."""
        self.registries  # noqa: B018 - registration problems are found while building
        return [(info.name, p) for info in self.infos.values() for p in info.problems]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
