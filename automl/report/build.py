"""Assemble `report.html`: the host's sections (summary, search, model, explanations), then each plugin's
`automl_report_sections(run)`, rendered into one offline page by `automl.report.page`.

Every section is built on its own: a section (or a plugin's hook) that raises is logged, listed under "Left
out" with its reason, and skipped; the others render. A report never fails a run.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from automl.report.section import ReportSection

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.report.page import Group
    from automl.report.run_view import RunView

log = logging.getLogger(__name__)

REPORT = "report.html"
HOOK = "automl_report_sections"


def write_report(run_dir: str | Path, host: Optional["PluginHost"] = None, config: Optional["RunConfig"] = None,
                 frame: Optional["pd.DataFrame"] = None, storage: Optional[str] = None,
                 out: Optional[str | Path] = None) -> Path:
    """Write `report.html` for the run in `run_dir` (or to `out`) and return its path.

    Reads the run directory only (see `RunView`); `config` and `frame` let the end of a run pass what it ran
    with (an SDK run keeps no `.hydra/config.yaml`, and a DataFrame is not in the directory).
    """
    from automl.errors import AutoMLError
    from automl.report.page import render
    from automl.report.run_view import RunView

    run = RunView(run_dir, host=host, config=config, frame=frame, storage=storage)
    if not run.run_dir.is_dir():
        raise AutoMLError(f"no run directory at {run.run_dir}: give the run_dir of a finished run")
    if run.metrics is None and run.summary is None and run.leaderboard is None:
        raise AutoMLError(f"{run.run_dir} holds no finished run (no metrics.json, run.json or leaderboard.csv): "
                          "give the run_dir of a finished run")
    started = time.perf_counter()
    with _one_torch_thread():
        groups, problems = collect(run)
    page = render(_title(run), _facts(run), groups, problems, _footer(run))
    target = Path(out) if out is not None else run.run_dir / REPORT
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)  # a reader never sees half a report
    log.info("report: %s (%d sections, %d left out) in %.1f s", target, sum(len(g.sections) for g in groups),
             len(problems), time.perf_counter() - started)
    return target


def write_report_safely(run_dir: str | Path, **kwargs: Any) -> Optional[Path]:
    """`write_report` at the end of a run: whatever goes wrong is logged, never raised (the run succeeded)."""
    try:
        return write_report(run_dir, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the report is a view of the run, not part of its result
        log.warning("report.html was not written: %s: %s (run `automl report %s` to try again)",
                    type(exc).__name__, exc, run_dir)
        return None


def collect(run: "RunView") -> tuple[list["Group"], list[str]]:
    """The report's groups of sections, and one line per section left out."""
    from automl.report import explanations, model, search, summary
    from automl.report.page import Group

    problems: list[str] = []
    groups = []
    for title, make in (("Summary", summary.sections), ("Search", search.sections), ("Model", model.sections),
                        ("Explanations", explanations.sections)):
        built = _built(lambda make=make: make(run), f"the {title.lower()} sections", problems)
        if built:
            groups.append(Group(title, tuple(built)))
    groups += _plugin_groups(run, problems)
    return groups, problems


def _plugin_groups(run: "RunView", problems: list[str]) -> list["Group"]:
    """Each plugin's `automl_report_sections(run)`, in its own group (the domain's owner first)."""
    from automl.report.page import Group

    host = run.host
    owner = None
    if run.domain is not None and run.domain in host.domains:
        owner = host.domains.owner(run.domain)
    impls = sorted(getattr(host.pm.hook, HOOK).get_hookimpls(), key=lambda i: i.plugin_name != owner)
    groups = []
    for impl in impls:
        name = impl.plugin_name
        built = _built(lambda impl=impl: impl.function(**{a: run for a in impl.argnames}),
                       f"plugin {name!r} ({HOOK})", problems)
        if built:
            title = f"Domain: {run.domain}" if name == owner else f"Plugin: {name}"
            groups.append(Group(title, tuple(built)))
    return groups


def _built(make: Callable[[], Any], who: str, problems: list[str]) -> list[ReportSection]:
    """Call `make` for a list of sections or section builders (zero-argument callables), each built on its own;
    what raises or has the wrong type is logged and listed in `problems`."""
    try:
        items = make()
    except Exception as exc:  # noqa: BLE001 - one broken source of sections never stops the report
        _problem(problems, f"{who} raised {type(exc).__name__}: {_line(exc)}")
        return []
    if items is None:
        return []
    if isinstance(items, ReportSection) or callable(items):
        items = [items]
    out = []
    for item in items:
        if callable(item) and not isinstance(item, ReportSection):
            started = time.perf_counter()
            try:
                item = item()
                log.debug("report: %r of %s built in %.2f s", getattr(item, "title", item), who,
                          time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001
                _problem(problems, f"a section of {who} raised {type(exc).__name__}: {_line(exc)}")
                log.debug("report section traceback", exc_info=True)
                continue
        if item is None:
            continue
        if not isinstance(item, ReportSection):
            _problem(problems, f"{who} returned a {type(item).__name__}, not a ReportSection")
            continue
        out.append(item)
    return out


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The report scores a few thousand rows at a time: one thread is faster than several waiting on each
    other (5x on two busy cores), and it leaves the machine's cores to whatever else runs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _problem(problems: list[str], text: str) -> None:
    log.warning("report: %s; the section is left out", text)
    problems.append(text)


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def _title(run: "RunView") -> str:
    source = run.summary.data.source if run.summary is not None else None
    return f"automl run report: {run.domain or 'unknown domain'}" + (f" on {source}" if source else "")


def _facts(run: "RunView") -> list[str]:
    facts = [f"run directory: {run.run_dir.resolve()}"]
    report, meta = run.metrics, run.meta
    if report is not None and meta is not None and report.test.get(meta.objective) is not None:
        model = f"{meta.lead.family} (trial {meta.lead.trial})" if len(meta.members) == 1 else \
            f"an ensemble of {len(meta.members)} trials ({', '.join(m.family for m in meta.members)})"
        facts.append(f"final model: {model}; test {meta.objective} {report.test[meta.objective]:.4f} on "
                     f"{report.n_test:,} rows")
    if run.summary is not None:
        facts.append(f"{run.summary.search.get('trials_in_study')} trials, {run.summary.wall_s:,.1f} s wall time, "
                     f"started {run.summary.started}")
    return facts


def _footer(run: "RunView") -> str:
    import importlib.metadata

    try:
        version = importlib.metadata.version("vertical-automl")
    except importlib.metadata.PackageNotFoundError:
        version = "(not installed)"
    return (f"Written by automl {version} at {time.strftime('%Y-%m-%d %H:%M:%S')} from the files of "
            f"{run.run_dir.resolve()}; regenerate with `automl report {run.run_dir}`. Self-contained: it opens "
            "offline, with nothing fetched.")
