"""Assemble BENCHMARKS.md from the sections the benchmark scripts wrote under benchmarks/results/.

    .venv/bin/python benchmarks/report.py

Each benchmark writes its own markdown section next to its JSON (every figure, the machine, the versions);
this only stitches them together under one introduction, so BENCHMARKS.md never holds a number that no
script produced. Run it after any benchmark.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE.parent / "BENCHMARKS.md"

SECTIONS = [
    ("peers", None, "`make bench-peers` (installs the peers into .venv-peers, then "
     "`.venv/bin/python benchmarks/peers.py`: five systems, four datasets, seeds 0 1 2)."),
    ("speed", "## Speed: the search against the loop a user writes by hand",
     "`.venv/bin/python benchmarks/speed.py` (about 13 minutes on 2 CPU cores). The hand-written loop is "
     "`benchmarks/reference/handwritten_search.py`, a byte-identical copy of the team's reference, run as it "
     "is; `benchmarks/reference/clocked.py` runs the same loop with a clock around the model's maths for (b)."),
    ("finance_risk", None,
     "`.venv/bin/python benchmarks/finance_risk.py` (12 trials, seed 0, three loan books); "
     "`--datasets credit_data --seeds 1 2 3 --append` adds splits."),
    ("medical", None, "`.venv/bin/python benchmarks/medical.py --seeds 0 1 2` (four datasets and the ungrouped "
     "biopsy table, three seeds)."),
    ("recommendation", None, "`.venv/bin/python benchmarks/recommendation.py` (movielens, full ranking)."),
    ("serving", None, "`.venv/bin/python benchmarks/serving.py` (about 3 minutes on 2 cores: a churn run, its ONNX "
     "export, then in-process and HTTP calls)."),
    ("reliability", None, "`.venv/bin/python benchmarks/reliability.py` (the crash and fault scenarios against the "
     "real `automl` command; about 15 minutes on 2 cores, longer when the machine is shared)."),
    ("privacy", None, "`.venv/bin/python benchmarks/privacy.py` (DP-SGD at epsilon 1, 3, 8 and without privacy, "
     "a loss-threshold membership-inference attack; about 4 minutes on 2 cores)."),
    ("text", None, "`.venv/bin/python benchmarks/text.py` (two text datasets, with and without the text, frozen and "
     "fine-tuned, against TF-IDF and embedding baselines; about 11 minutes on 2 cores)."),
]


def main() -> int:
    missing = [name for name, _, _ in SECTIONS if not (RESULTS / f"{name}.md").exists()]
    if missing:
        print(f"no results for {', '.join(missing)}: run benchmarks/<name>.py first", file=sys.stderr)
        return 1
    speed = json.loads((RESULTS / "speed.json").read_text())
    m = speed["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Every figure below was produced by a script under `benchmarks/`, which prints its table and writes JSON "
        "(every figure, the machine, the versions) to `benchmarks/results/`; `benchmarks/report.py` stitches "
        "their markdown sections into this file. Nothing here is typed in by hand.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + f". GPU: {m['gpu'] or 'none'}.",
        "",
        "GPU figures ((d) of the speed benchmark) are written only when the benchmark runs on a machine with a "
        "GPU; none was available for these runs, so every figure here is CPU-only.",
    ]
    for name, title, command in SECTIONS:
        body = (RESULTS / f"{name}.md").read_text().strip()
        lines += ["", title or "", "", f"Reproduce: {command}", "", body] if title else \
            ["", body.split("\n", 1)[0], "", f"Reproduce: {command}", "", body.split("\n", 1)[1].strip()]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
