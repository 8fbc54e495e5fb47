"""`automl plugins [--check] [--strict] [--json]`: what is installed, what each plugin registered, what went wrong.

A plugin with any problem is skipped whole by every automl command (`automl.host`); the listing marks it
[BROKEN] and the command exits 1, naming each broken plugin and its reason on stderr. `--check` also runs the
contract check (`automl.testing.contract`) on every plugin: real data through each domain's pipeline, a few
sampled models per family trained one step, every metric computed. `--strict` also counts a warning as a
failure: a plugin installed without distribution metadata (its version and what to reinstall are unknown).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import AutoMLError
from automl.host import PluginHost, PluginInfo

if TYPE_CHECKING:  # pragma: no cover
    from automl.testing.contract import ContractReport

_KIND_LABELS = (("domains", "domains"), ("datasets", "datasets"), ("model_families", "model families"),
                ("metrics", "metrics"))
_CHECKED = (("domains", "domains run"), ("model_families", "families trained"), ("metrics", "metrics computed"),
            ("datasets", "datasets loaded"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="automl plugins", description="List installed automl plugins.")
    parser.add_argument("--check", action="store_true",
                        help="also run the contract check on every plugin (real data, one training step per "
                             "sampled model, every metric); exit 1 if any plugin is broken")
    parser.add_argument("--strict", action="store_true",
                        help="also fail on warnings: a plugin without distribution metadata (no version, nothing "
                             "to reinstall)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)

    host = PluginHost.installed()
    host.registries  # noqa: B018 - calls every registration hook, recording problems
    host.config_dirs()
    report: Optional["ContractReport"] = None
    if args.check:
        from automl.testing.contract import run_check

        report = run_check(host)
    problems = {name: _problems(info, report) for name, info in host.infos.items()}
    if args.strict:
        for name, info in host.infos.items():
            if name != "builtin" and info.distribution is None:
                problems[name].append("no distribution metadata: install it with pip (pip install -e DIR) so its "
                                      "version is recorded and a model that needs it can name it")
    if args.json:
        print(json.dumps([_as_dict(host, info, problems[name], report) for name, info in host.infos.items()],
                         indent=2))
    else:
        for name, info in host.infos.items():
            _print_plugin(host, info, problems[name], report)
    broken = [name for name, found in problems.items() if found]
    if not broken:  # with --json, stdout holds the JSON only
        if report is not None:
            print(f"all {len(host.infos)} plugins passed the contract check",
                  file=sys.stderr if args.json else sys.stdout)
        return 0
    what = "automl plugins --check" if report is not None else "automl plugins"
    lines = [f"{what}: {len(broken)} of {len(host.infos)} plugins failed: {', '.join(broken)} (skipped whole: "
             "nothing they register is used)"]
    lines += [f"  {name}: {problem}" for name in broken for problem in problems[name]]
    print("\n".join(lines), file=sys.stderr)
    return 1


def _problems(info: PluginInfo, report: Optional["ContractReport"]) -> list[str]:
    found = info.problems + (report.findings.get(info.name, []) if report else [])
    return list(dict.fromkeys(found))  # the same problem may be recorded more than once


def _exercised(info: PluginInfo, report: "ContractReport") -> dict[str, list[str]]:
    return {kind: sorted(n for n in info.registered.get(kind, []) if n in report.exercised[kind])
            for kind, _ in _CHECKED}


def domain_summary(host: PluginHost, name: str) -> Optional[dict[str, Any]]:
    """What a domain searches and reports, its reused host families and metrics included."""
    try:
        domain = host.domains.get(name)
    except AutoMLError:
        return None  # a conflicted name: the problem is listed already
    families = [f.name for f in host.model_families if f.tasks & domain.tasks
                and (domain.families is None or f.name in domain.families)]
    metrics = list(dict.fromkeys(m for names in domain.metrics.values() for m in names))
    return {"tasks": sorted(domain.tasks), "model_families": families, "metrics": metrics,
            "default_dataset": domain.default_dataset}


def _as_dict(host: PluginHost, info: PluginInfo, problems: list[str], report: Optional["ContractReport"]) -> dict:
    out = {"name": info.name, "distribution": info.distribution, "version": info.version, "module": info.module,
           "loaded": info.loaded, "registered": info.registered, "problems": problems,
           "domains": {d: domain_summary(host, d) for d in info.registered.get("domains", [])}}
    if report is not None:
        out["check"] = {"passed": not problems, "exercised": _exercised(info, report)}
    return out


def _print_plugin(host: PluginHost, info: PluginInfo, problems: list[str],
                  report: Optional["ContractReport"]) -> None:
    head = [info.name, info.version or "", f"({info.distribution})" if info.distribution else "",
            "[BROKEN]" if problems or not info.loaded else ""]
    print(" ".join(part for part in head if part))
    for kind, label in _KIND_LABELS:
        names = info.registered.get(kind)
        if names:
            print(f"  {label}: {', '.join(sorted(names))}")
    for name in sorted(info.registered.get("domains", [])):
        summary = domain_summary(host, name)
        if summary:
            print(f"  domain {name} ({', '.join(summary['tasks'])}): model families "
                  f"{', '.join(summary['model_families'])}; metrics {', '.join(summary['metrics'])}"
                  + (f"; default dataset {summary['default_dataset']}" if summary["default_dataset"] else ""))
    for problem in problems:
        print(f"  error: {problem}")
    if report is not None and not problems:
        exercised = _exercised(info, report)
        counts = [f"{label} {len(exercised[kind])}/{len(info.registered[kind])}" for kind, label in _CHECKED
                  if info.registered.get(kind)]
        print(f"  check: passed ({', '.join(counts)})" if counts else "  check: passed")
