"""Run the hand-written reference search unchanged, with a clock on its Trainer, for the overhead figure.

    python benchmarks/reference/clocked.py N_TRIALS MAX_EPOCHS OUT_JSON

`handwritten_search.py` (a byte-identical copy of shared/reference/handwritten_search.py) runs as it is;
this wrapper only appends a timing callback to every `lightning.Trainer` it builds (the same `StepClock`
the project's Lightning engine uses) and, afterwards, adds per-trial durations and compute seconds to the
reference's own JSON. Wall-clock comparisons use the unwrapped script.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import lightning as L

from automl.training.lightning_engine import StepClock

clocks: list[StepClock] = []
_init = L.Trainer.__init__


def _clocked_init(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
    clock = StepClock()
    clocks.append(clock)
    kwargs["callbacks"] = [*kwargs.get("callbacks", []), clock]
    _init(self, *args, **kwargs)


L.Trainer.__init__ = _clocked_init
script = Path(__file__).with_name("handwritten_search.py")
sys.argv = [str(script), *sys.argv[1:]]
namespace = runpy.run_path(str(script), run_name="__main__")
out = Path(sys.argv[3])
result = json.loads(out.read_text())
result["trial_s"] = [(t.datetime_complete - t.datetime_start).total_seconds() for t in namespace["study"].trials]
result["compute_s"] = [c.compute_s for c in clocks]
out.write_text(json.dumps(result))
