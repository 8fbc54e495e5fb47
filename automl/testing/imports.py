"""Which heavy libraries a plugin pulls in when it is listed, each plugin probed in a fresh interpreter.

`automl plugins` and `automl --help` import every installed plugin and call its registration hooks, so one
plugin that imports torch (about a second) or lightning (about four) at the top of a module, or while
registering, slows every command down for everybody. The probe does what the listing does: imports the
module and calls its registration hooks.
"""

from __future__ import annotations

import os
import subprocess
import sys

#: Libraries a plugin module must import inside the functions that need them, never at module level.
HEAVY = ("torch", "lightning", "pytorch_lightning", "pandas", "sklearn", "transformers")

_PROBE = (
    "import importlib, sys\n"
    "module = importlib.import_module(sys.argv[1])\n"
    "for name in dir(module):\n"
    "    if name.startswith('automl_register_') or name == 'automl_config_dirs':\n"
    "        try:\n"
    "            getattr(module, name)()\n"
    "        except Exception:\n"  # a raising hook is reported by the host already
    "            pass\n"
    "print(' '.join(m for m in sys.argv[2:] if m in sys.modules))\n"
)


class ImportProbe:
    """Imports each plugin's module and calls its registration hooks in a fresh interpreter, in parallel, and
    lists the heavy libraries that pulled in. Start it first and collect the results last: the probes run while
    the rest of the check does."""

    def __init__(self, modules: dict[str, str]) -> None:
        """:param modules: plugin name -> its module (``pkg.mod``)."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._procs = {
            plugin: subprocess.Popen([sys.executable, "-c", _PROBE, module, *HEAVY], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for plugin, module in modules.items()
        }

    def results(self, timeout: float = 120.0) -> dict[str, list[str]]:
        """Plugin -> heavy libraries its module imports. Modules that cannot be imported on their own (defined
        in a test, or failing to import, which the host reports already) are left out."""
        found: dict[str, list[str]] = {}
        for plugin, proc in self._procs.items():
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                continue
            if proc.returncode == 0 and out.split():
                found[plugin] = out.split()
        return found

    def kill(self) -> None:
        """Stop probes still running (the check failed before it collected them)."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
