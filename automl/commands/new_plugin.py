"""`automl new-plugin NAME [--dir PATH]`: render the plugin template into a complete, installable distribution.

The template (`automl/templates/plugin/`, package data of `automl.templates`) is rendered by Jinja2: files
ending in `.jinja` are rendered and lose the suffix, other files are copied as they are, and `{{name}}` in a
path becomes the plugin's name. The result registers one domain, one dataset (a CSV inside the package),
one metric and a Hydra config, with tests that run the host's contract check.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.resources
import importlib.util
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from automl.errors import AutoMLError

TEMPLATE_PACKAGE = "automl.templates"
TEMPLATE = "plugin"
RENDERED = ".jinja"
EXAMPLE_CSV = "example.csv"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Names the host gives its own plugin, so no installed plugin may take them.
_RESERVED = {"builtin", "automl"}


class NewPluginError(AutoMLError):
    """The plugin cannot be rendered as asked: a bad or taken name, or an occupied folder."""


@dataclass(frozen=True)
class PluginNames:
    """Every name the rendered plugin uses, derived from NAME so that they cannot drift apart."""

    name: str
    package: str
    distribution: str
    dataset: str
    metric: str

    @classmethod
    def of(cls, name: str) -> "PluginNames":
        if not _NAME.match(name):
            raise NewPluginError(
                f"plugin name {name!r} is not valid: use lower-case letters, digits and '_', starting with a letter "
                f"(it names the domain and the Python package automl_<name>), e.g. claims or fraud_cards"
            )
        return cls(name=name, package=f"automl_{name}", distribution=f"automl-{name.replace('_', '-')}",
                   dataset=f"{name}_example", metric=f"{name}_top_decile_recall")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="automl new-plugin",
        description="Create a domain plugin distribution (domain, dataset, metric, Hydra config, tests, README).")
    parser.add_argument("name", help="the plugin's name: lower-case letters, digits and '_' (e.g. claims)")
    parser.add_argument("--dir", default=".", help="folder to create the distribution in (default: here)")
    args = parser.parse_args(argv)

    names = PluginNames.of(args.name)
    check_names_are_free(names)
    target = Path(args.dir).expanduser() / names.distribution
    render_plugin(names, target)
    print(f"created {target}: plugin {names.name!r} (package {names.package}) with domain {names.name!r}, "
          f"dataset {names.dataset!r}, metric {names.metric!r} and the host's mlp family")
    steps = [(f"pip install -e {target}", "install it (editable)"),
             ("automl plugins", f"lists {names.name}"),
             (f"cd {target} && pytest", "its tests, with the host's contract check"),
             (f"automl domain={names.name} search.n_trials=2", "a short search on the example data")]
    width = max(len(cmd) for cmd, _ in steps)
    print("next:\n" + "\n".join(f"  {cmd:<{width}}  # {why}" for cmd, why in steps))
    return 0


def check_names_are_free(names: PluginNames) -> None:
    """Refuse a name that an installed plugin, a first-party plugin or an installed package already uses."""
    from automl.host import FIRST_PARTY, PluginHost

    if names.name in _RESERVED:
        raise NewPluginError(f"plugin name {names.name!r} is reserved by the host: choose another name")
    if names.name in FIRST_PARTY:
        raise NewPluginError(f"{names.name!r} is the first-party plugin {FIRST_PARTY[names.name][0]!r}: "
                             "choose another name")
    host = PluginHost.installed()
    if names.name in host.infos:
        raise NewPluginError(f"an installed plugin is already named {names.name!r} "
                             f"({host.infos[names.name].distribution}): choose another name")
    for registry, wanted in ((host.domains, names.name), (host.datasets, names.dataset),
                             (host.metrics, names.metric)):
        if wanted in registry:
            raise NewPluginError(f"{registry.kind} {wanted!r} is already registered by plugin "
                                 f"{registry.owner(wanted)!r}: choose another plugin name")
    if importlib.util.find_spec(names.package) is not None:
        raise NewPluginError(f"a Python package named {names.package!r} is already installed: choose another name")


def template_root() -> Path:
    """The template folder, shipped inside the package as `automl/templates/plugin`."""
    root = Path(str(importlib.resources.files(TEMPLATE_PACKAGE))) / TEMPLATE
    if not root.is_dir():
        raise NewPluginError(f"the plugin template is missing at {root}: reinstall automl (pip install -e .)")
    return root


def render_plugin(names: PluginNames, target: Path) -> list[Path]:
    """Render the template into `target` (which must not exist or be empty); return the files written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise NewPluginError(f"{target} already exists: remove it or pass another --dir")
    source = template_root()
    context = {**asdict(names), "rows": _count_rows(next(source.rglob(EXAMPLE_CSV))),
               "automl_requirement": _host_requirement()}
    target.mkdir(parents=True, exist_ok=True)
    try:
        return render_tree(source, target, context)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never leave half a plugin behind
        raise


def render_tree(source: Path, target: Path, context: dict) -> list[Path]:
    """Jinja2 over a folder: paths and `.jinja` files rendered with `context`, other files copied."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # Not HTML: nothing to escape. StrictUndefined turns a misspelled variable into an error, not a blank.
    env = Environment(loader=FileSystemLoader(str(source)), undefined=StrictUndefined, keep_trailing_newline=True,
                      autoescape=False)
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(source)
        out = target.joinpath(*(env.from_string(part).render(context) for part in rel.parts))
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == RENDERED:
            out = out.with_suffix("")
            out.write_text(env.get_template(rel.as_posix()).render(context), encoding="utf-8")
        else:
            shutil.copyfile(path, out)
        written.append(out)
    return written


def _count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def _host_requirement() -> str:
    try:
        major, minor = importlib.metadata.version("vertical-automl").split(".")[:2]
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return "vertical-automl"
    return f"vertical-automl>={major}.{minor}"
