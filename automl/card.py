"""The model card of a run: `model_card.md` for a model-risk committee, `model_card.json` for tools.

Written at the end of every run (`automl.run.run`, after `metrics.json` and `run.json`) and again after an
export. It only reads what the run already wrote, so it states nothing the files do not:

- data, split and validation scheme: `run.json` `data` (source, rows, features, target, positive class,
  every column left out and why);
- the chosen model: `metrics.json` `model` and `predictor/predictor.json` members (family, weights, folds),
  its calibration, and the search (`run.json` `search`);
- test metrics with 95% intervals where the domain computes them (`metrics.json` `test`, `ci95`);
- the decision threshold and how it was chosen (`predictor.json` `threshold`, `notes`; `metrics.json`
  `details` `decision` / `operating_point`), fairness where a sensitive attribute was named
  (`details.fairness`);
- intended use and limits, in the domain plugin's words (`DomainSpec.intended_use`);
- differential privacy, when the run trained with it (`metrics.json` `privacy`): the (epsilon, delta) of the
  released weights by the accountant, the search's composed epsilon, and what the guarantee does not cover;
- versions (`run.json` `versions`) and a SHA-256 of every weights file in `predictor/`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.integrity import sha256

if TYPE_CHECKING:  # pragma: no cover
    from automl.host import PluginHost


CARD_MD, CARD_JSON = "model_card.md", "model_card.json"
PREDICTOR_DIR = "predictor"


def weights_files(predictor_dir: Path) -> list[Path]:
    """The weights of a saved predictor: its *.safetensors files and every file of a model folder inside it
    (a `transformers` folder: config and weights)."""
    if not predictor_dir.is_dir():
        return []
    top = sorted(p for p in predictor_dir.glob("*.safetensors") if p.is_file())
    nested = sorted(p for d in predictor_dir.iterdir() if d.is_dir() for p in d.rglob("*") if p.is_file())
    return top + nested


def predictor_digest(predictor_dir: Path) -> Optional[str]:
    """One SHA-256 over every file of a saved predictor (names and contents): changes when the predictor does."""
    if not predictor_dir.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in predictor_dir.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(predictor_dir)).encode())
        h.update(sha256(path).encode())
    return h.hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def card_data(run_dir: Path, host: Optional["PluginHost"] = None) -> dict[str, Any]:
    """Everything the card says, as plain JSON (`model_card.json`)."""
    run = _read(run_dir / "run.json")
    metrics = _read(run_dir / "metrics.json")
    predictor = _read(run_dir / PREDICTOR_DIR / "predictor.json")
    domain_name = run.get("domain") or predictor.get("domain")
    intended_use, description = "", ""
    if domain_name:
        try:
            from automl.host import PluginHost

            spec = (host or PluginHost.installed()).domain(domain_name)
            intended_use, description = spec.intended_use, spec.description
        except Exception as exc:  # noqa: BLE001 - a card is still written when the plugin is gone
            intended_use = f"(not available: the plugin of domain {domain_name!r} could not be loaded: {exc})"
    details = metrics.get("details", {}) or {}
    members = predictor.get("members") or metrics.get("model", {}).get("members") or []
    predictor_dir = run_dir / PREDICTOR_DIR
    export = _read(run_dir / "export" / "export.json").get("exports", {})
    return {
        "format": 1,
        "run_dir": str(run_dir),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "domain": {"name": domain_name, "description": description, "intended_use": intended_use},
        "data": run.get("data", {}),
        "search": run.get("search", {}),
        "model": {
            "family": metrics.get("model", {}).get("family") or (members[0]["family"] if members else None),
            "best_trial": metrics.get("model", {}).get("best_trial"),
            "objective": metrics.get("model", {}).get("objective") or predictor.get("objective"),
            "validation_value": predictor.get("validation_value"),
            "validation_rows": metrics.get("validation_rows"),
            "task": predictor.get("task"),
            "members": [{k: m.get(k) for k in ("trial", "family", "weight", "folds", "params")} for m in members],
            "calibration": (predictor.get("calibration") or {}).get("method"),
            "ensemble": metrics.get("ensemble"),
        },
        "test": {"n": metrics.get("n_test"), "metrics": metrics.get("test", {}), "ci95": metrics.get("ci95", {}),
                 "validation": metrics.get("validation", {})},
        "decision": {
            "threshold": predictor.get("threshold"),
            "notes": predictor.get("notes", {}),
            "how": {k: details[k] for k in ("decision", "operating_point") if k in details},
        },
        "fairness": details.get("fairness"),
        "privacy": metrics.get("privacy"),
        "details": {k: v for k, v in details.items() if k not in ("decision", "operating_point", "fairness")},
        "versions": run.get("versions", {}),
        "weights": {str(p.relative_to(predictor_dir)): sha256(p) for p in weights_files(predictor_dir)},
        "exports": {fmt: {k: e.get(k) for k in ("file", "sha256", "exporter", "parity", "quantized")}
                    for fmt, e in export.items()},
        "wall_s": run.get("wall_s"),
        "started": run.get("started"),
    }


def write_model_card(run_dir: str | Path, host: Optional["PluginHost"] = None) -> Path:
    """Write `model_card.md` and `model_card.json` into the run directory; returns the Markdown file."""
    run_dir = Path(run_dir)
    data = card_data(run_dir, host)
    (run_dir / CARD_JSON).write_text(json.dumps(data, indent=2, default=str) + "\n")
    path = run_dir / CARD_MD
    path.write_text(render(data))
    return path


# ---------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def _bullets(values: dict[str, Any], depth: int = 0) -> list[str]:
    """A nested dict as an indented list (the domain's own details, whatever their shape)."""
    out = []
    for key, value in values.items():
        pad = "  " * depth
        if isinstance(value, dict) and value:
            out.append(f"{pad}- {key}:")
            out += _bullets(value, depth + 1)
        else:
            out.append(f"{pad}- {key}: {_fmt(value)}")
    return out


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return out


def render(card: dict[str, Any]) -> str:
    data, model, test, decision = card["data"], card["model"], card["test"], card["decision"]
    domain = card["domain"]
    title = f"Model card: {data.get('target') or 'model'} ({domain.get('name')} domain, {data.get('source', 'data')})"
    lines = [f"# {title}", "",
             f"Run `{card['run_dir']}`, started {card.get('started') or 'n/a'}; card written {card['written']} by "
             f"automl "
             f"{card['versions'].get('vertical-automl', 'n/a')}. Every figure below comes from the run's own files "
             "(run.json, metrics.json, predictor/predictor.json).", ""]

    lines += ["## Intended use and limits", ""]
    lines += [domain.get("intended_use") or "The domain plugin states no intended use.", ""]
    if domain.get("description"):
        lines += [f"Domain: {domain['description']}.", ""]

    lines += ["## Data", ""]
    if data:
        features = data.get("features", {})
        lines += [f"- Source: {data.get('source')}; {data.get('rows')} rows used"
                  + (f" ({data.get('dropped_rows')} dropped: target missing)" if data.get("dropped_rows") else ""),
                  f"- Task: {data.get('task')}; target `{data.get('target')}`"
                  + (f"; positive class `{data['positive_class']}`" if data.get("positive_class") is not None else "")]
        if data.get("classes"):
            lines.append("- Classes (rows): " + ", ".join(f"{c} {n}" for c, n in data["classes"].items()))
        for kind, cols in features.items():
            shown = ", ".join(f"`{c}`" for c in cols) or "none"
            lines.append(f"- {kind.capitalize()} features ({len(cols)}): {shown}")
        if data.get("sensitive"):
            lines.append("- Sensitive attributes (reported on): " + ", ".join(f"`{c}`" for c in data["sensitive"]))
        if data.get("dropped"):
            lines += ["", "Columns left out and why:", ""]
            lines += _table(["column", "reason"], [[f"`{c}`", why] for c, why in data["dropped"].items()])
        lines += ["", "## Split and validation", ""]
        split = data.get("split", {})
        selection = data.get("validation") or "n/a"
        if card.get("privacy"):  # cross-validation is off under privacy (automl.search.context)
            selection = f"one validation split of {split.get('validation', 'n/a')} rows (no cross-validation under " \
                        "differential privacy)"
        lines += ["- Rows: " + ", ".join(f"{part} {n}" for part, n in split.items()),
                  f"- Model selection: {selection}",
                  "- The test rows were used once, to measure the final model below.", ""]
    else:
        lines += ["Not recorded (this run wrote no run.json).", ""]

    lines += ["## Model", ""]
    lines += [f"- Family: {model.get('family')} (trial {_fmt(model.get('best_trial'))}); task {model.get('task')}",
              f"- Selected on {model.get('objective')} = {_fmt(model.get('validation_value'))} "
              f"({model.get('validation_rows') or 'validation'})",
              f"- Calibration: {model.get('calibration') or 'none'}"]
    search = card.get("search") or {}
    if search:
        lines.append(f"- Search: {search.get('trials_in_study')} trials ({search.get('sampler')} sampler, "
                     f"{search.get('pruner')} pruning) over {', '.join(search.get('families', []))}; seed "
                     f"{search.get('seed')}; {_fmt(card.get('wall_s'))} s")
        if search.get("interrupted") or search.get("problems") or search.get("lost_trials"):
            lines.append(f"- The search did not run as planned: interrupted {_fmt(bool(search.get('interrupted')))}; "
                         f"lost trials {_fmt(search.get('lost_trials') or 0)}; problems: "
                         f"{_fmt(search.get('problems')) if search.get('problems') else 'none'}")
    if model["members"]:
        lines += ["", "Members (probabilities or values averaged with these weights; folds > 0: that many fold "
                      "models averaged):", ""]
        lines += _table(["trial", "family", "weight", "folds"],
                        [[m["trial"], m["family"], m["weight"], m["folds"]] for m in model["members"]])
    if isinstance(model.get("ensemble"), dict):  # its members are the table above
        lines += ["", "Ensemble:", ""] + _bullets({k: v for k, v in model["ensemble"].items() if k != "members"})
    lines.append("")

    lines += ["## Test metrics", ""]
    if test["metrics"]:
        ci = test.get("ci95") or {}
        rows = [[name, value, f"{_fmt(ci[name][0])} to {_fmt(ci[name][1])}" if name in ci else "",
                 test.get("validation", {}).get(name)] for name, value in test["metrics"].items()]
        lines += [f"On {test.get('n')} held-out test rows" + (" (95% intervals as the domain computes them)"
                                                              if ci else "") + ":", ""]
        lines += _table(["metric", "test", "95% interval", "validation"], rows)
        if card["details"].get("ci95_method"):
            lines += ["", f"Intervals: {card['details']['ci95_method']}."]
    else:
        lines.append("Not recorded.")
    lines.append("")

    lines += ["## Decision threshold", ""]
    if decision["threshold"] is not None:
        lines.append(f"Rows with P(`{data.get('positive_class')}`) >= {_fmt(decision['threshold'])} are labelled "
                     f"`{data.get('positive_class')}`.")
        how = decision.get("how") or {}
        if how or decision.get("notes"):
            lines += ["", "How it was chosen:", ""] + _bullets(how or decision["notes"])
    elif model.get("task") == "binary":
        lines.append(f"0.5 on P(`{data.get('positive_class')}`): the domain chose no operating point.")
    else:
        lines.append("None: " + ("the most probable class is predicted." if model.get("task") == "multiclass"
                                 else "the predictor returns values."))
    lines.append("")

    if card.get("privacy"):
        lines += privacy_lines(card["privacy"])

    if card.get("fairness"):
        lines += ["## Fairness", ""]
        for attribute, report in card["fairness"].items():
            lines.append(f"### `{attribute}`")
            lines.append("")
            if not isinstance(report, dict):
                lines += [_fmt(report), ""]
                continue
            lines += _bullets({k: v for k, v in report.items() if k != "groups"})
            groups = report.get("groups")
            if isinstance(groups, dict) and groups:
                keys = sorted({k for g in groups.values() if isinstance(g, dict) for k in g})
                lines += [""] + _table(["group", *keys], [[g, *(v.get(k) for k in keys)] for g, v in groups.items()])
            lines.append("")

    other = {k: v for k, v in card["details"].items() if k != "ci95_method"}
    if other:
        lines += ["## Other results of the domain", ""] + _bullets(other) + [""]

    if card.get("exports"):
        lines += ["## Exports", ""]
        for fmt, e in card["exports"].items():
            parity = e.get("parity") or {}
            lines.append(f"- {fmt}: `export/{e.get('file')}` ({e.get('exporter')}); largest difference from the "
                         f"predictor {_fmt(parity.get('max_abs_diff'))} on {parity.get('rows')} rows; SHA-256 "
                         f"`{e.get('sha256')}`")
            if e.get("quantized"):
                q = e["quantized"]
                lines.append(f"  - int8: `export/{q['file']}`, {q['metric']} {_fmt(q['float_value'])} -> "
                             f"{_fmt(q['int8_value'])} (bound {q['bound']})")
        lines.append("")

    lines += ["## Versions", ""]
    lines += _table(["package", "version"], [[k, v] for k, v in card["versions"].items()]) or ["Not recorded."]
    lines += ["", "## Weights (SHA-256)", ""]
    lines += _table(["file", "sha256"], [[f"`predictor/{f}`", f"`{h}`"] for f, h in card["weights"].items()])
    lines.append("")
    return "\n".join(lines)


def privacy_lines(p: dict[str, Any]) -> list[str]:
    """The card's differential-privacy statement: what is guaranteed, by which figures, and what is not covered."""
    model, search = p.get("model") or {}, p.get("search") or {}
    lines = ["## Differential privacy", "",
             f"Trained with {p.get('mechanism')} (Opacus {p.get('opacus') or 'n/a'}), to privacy.epsilon = "
             f"{_fmt(p.get('epsilon_target'))} and delta = {_fmt(p.get('delta'))}"
             + (" (1 / training rows, the default)" if p.get("delta_default") else "") + ".", "",
             f"- Protects: {p.get('protects')}.",
             f"- Guarantee: {p.get('guarantee')}.",
             f"- The released weights (trial {_fmt(model.get('trial'))}): epsilon = {_fmt(model.get('epsilon'))} at "
             f"delta = {_fmt(model.get('delta'))}, by the {model.get('accountant', 'rdp')} accountant over the "
             f"{_fmt(model.get('steps'))} steps taken (noise multiplier {_fmt(model.get('noise_multiplier'))}, "
             f"sampling rate {_fmt(model.get('sample_rate'))}, clipping norm {_fmt(model.get('max_grad_norm'))})."
             + (f" {model['note']}." if model.get("note") else ""),
             f"- The whole search: epsilon = {_fmt(search.get('epsilon'))} at delta = {_fmt(search.get('delta'))} over "
             f"{_fmt(search.get('fits'))} fits on the same rows: {search.get('note')}. The model above was chosen "
             "among them, so this is the figure that covers the choice too.",
             f"- Final model: {p.get('ensemble')}.",
             f"- Numeric input maps: {p.get('input_maps')}.", "",
             "Not covered by the guarantee:", ""]
    lines += [f"- {item}" for item in p.get("not_covered") or []]
    lines.append("")
    return lines
