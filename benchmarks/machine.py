"""What a benchmark ran on, for its JSON: the CPU, cores, Python, platform and the versions of the libraries it
measures (None for one that is not installed). Imported by the benchmark scripts beside it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any, Iterable


def describe(libraries: Iterable[str]) -> dict[str, Any]:
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    versions: dict[str, Any] = {}
    for dist in libraries:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions}
