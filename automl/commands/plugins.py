"""`automl plugins`: what is installed, what each plugin registered, and what went wrong."""

from __future__ import annotations

import argparse
import json
import sys

from automl.plugins import PluginHost

_KIND_LABELS = (("domains", "domains"), ("datasets", "datasets"), ("model_families", "model families"),
                ("metrics", "metrics"))


def plugins_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="automl plugins", description="List installed automl plugins.")
    parser.add_argument("--check", action="store_true",
                        help="also run the contract check on every plugin; exit 1 if any plugin is broken")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)

    host = PluginHost()
    host.registries  # noqa: B018 - calls every registration hook, recording problems
    host.config_dirs()
    failures: dict[str, list[str]] = {}
    if args.check:
        from automl.testing.contract import check_plugins

        failures = check_plugins(host)
    if args.json:
        print(json.dumps([_as_dict(host, name, failures.get(name, [])) for name in host.infos], indent=2))
    else:
        for name in host.infos:
            _print_plugin(host, name, failures.get(name, []))
    broken = [n for n, i in host.infos.items() if i.problems or failures.get(n)]
    if args.check:
        verdict = f"{len(broken)} plugin(s) failed the check: {', '.join(broken)}" if broken else \
            f"all {len(host.infos)} plugins passed the contract check"
        print(verdict, file=sys.stderr if broken else sys.stdout)
        return 1 if broken else 0
    return 0


def _as_dict(host: PluginHost, name: str, failures: list[str]) -> dict:
    info = host.infos[name]
    return {"name": info.name, "distribution": info.distribution, "version": info.version, "module": info.module,
            "loaded": info.loaded, "registered": info.registered, "problems": info.problems + failures}


def _print_plugin(host: PluginHost, name: str, failures: list[str]) -> None:
    info = host.infos[name]
    head = [info.name, info.version or "", f"({info.distribution})" if info.distribution else "",
            "" if info.ok and not failures else "[BROKEN]"]
    print(" ".join(part for part in head if part))
    for kind, label in _KIND_LABELS:
        names = info.registered.get(kind)
        if names:
            print(f"  {label}: {', '.join(sorted(names))}")
    for problem in info.problems + failures:
        print(f"  error: {problem}")
