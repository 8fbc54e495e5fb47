"""The shape of the house, checked: no import cycles among automl's modules, and plugins that speak to the host
only through the public API.

Every `import` counts, wherever it stands: at module level, inside a function, under `if TYPE_CHECKING:`.
An import inside a function still ties two rooms together, and a cycle in annotations is still a cycle for a
reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "automl"
PLUGINS = ROOT / "plugins"
TEMPLATE = PACKAGE / "templates" / "plugin"
#: What plugins and the template may import from automl: the public API, the SDK and the test kit.
PUBLIC = {"automl.api"}
PUBLIC_IN_TESTS = {"automl", "automl.api", "automl.testing"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(source: str, module: str, is_package: bool, modules: frozenset[str] = frozenset()) -> set[str]:
    """Every module an import statement in `source` names (relative imports resolved). `from pkg import x`
    names the module `pkg.x` when there is one (`modules`), else `pkg` itself."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p, ROOT): p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts}
    modules = frozenset(paths)
    return {name: {t for t in _imports(path.read_text(), name, path.name == "__init__.py", modules)
                   if t in modules and t != name}
            for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_automl_module_imports_another_in_a_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _imports("from . import x\nfrom .y import z\n", "automl.search.study", False,
                    frozenset({"automl.search.x"})) == {"automl.search.x", "automl.search.y"}


def _automl_imports(path: Path) -> set[str]:
    return {t for t in _imports(path.read_text(), "plugin", False) if t == "automl" or t.startswith("automl.")}


def _offenders(files: list[Path], allowed: set[str], base: Path) -> list[str]:
    bad = []
    for path in files:
        for target in sorted(_automl_imports(path)):
            if target not in allowed:
                bad.append(f"{path.relative_to(base)} imports {target}")
    return bad


@pytest.fixture(scope="module")
def rendered_template(tmp_path_factory) -> Path:
    """The plugin template rendered as `automl new-plugin` renders it."""
    from automl.commands.new_plugin import PluginNames, render_plugin

    target = tmp_path_factory.mktemp("template") / "automl-probe"
    render_plugin(PluginNames.of("probe"), target)
    return target


def _sources(root: Path, tests: bool) -> list[Path]:
    return [p for p in root.rglob("*.py") if ("tests" in p.relative_to(root).parts) == tests]


def test_plugins_and_the_template_import_only_the_public_api(rendered_template):
    bad = _offenders(_sources(PLUGINS, tests=False), PUBLIC, ROOT)
    bad += _offenders(_sources(rendered_template, tests=False), PUBLIC, rendered_template)
    assert not bad, "plugins must import automl only through automl.api:\n" + "\n".join(bad)


def test_plugin_tests_use_only_the_api_the_sdk_and_the_test_kit(rendered_template):
    bad = _offenders(_sources(PLUGINS, tests=True), PUBLIC_IN_TESTS, ROOT)
    bad += _offenders(_sources(rendered_template, tests=True), PUBLIC_IN_TESTS, rendered_template)
    assert not bad, "plugin tests may import automl, automl.api and automl.testing only:\n" + "\n".join(bad)


@pytest.mark.parametrize("offending", ["from automl.tabular.calibration import fit_calibration\n",
                                       "import automl.search.study\n", "from automl.specs import BINARY\n"])
def test_the_rule_catches_an_import_past_the_api(tmp_path, offending):
    path = tmp_path / "plugin.py"
    path.write_text("from automl.api import hookimpl\n" + offending)
    assert len(_offenders([path], PUBLIC, tmp_path)) == 1
