"""The report as one self-contained HTML file: it opens offline and prints.

Offline by construction: plotly.js is inlined once from the installed plotly package
(`plotly.offline.get_plotlyjs`), figures are plotly JSON drawn by that script, pictures are data URIs, the
style sheet is inline and uses system fonts. A Content-Security-Policy forbids the page to load anything
from anywhere (`default-src 'none'`; inline scripts and styles, data: images): a figure that tried to fetch
a map tile or a font would be blocked and show in the browser's console, which the browser test checks.

The layout is one readable column for a laptop screen; `@media print` drops the navigation and the plotly
toolbars, keeps figures and tables from splitting across pages, and prints on A4 or Letter.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.report.section import ReportSection

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Nothing may be fetched: scripts, styles and pictures are all inline.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:")
FIGURE_HEIGHT = 420
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}

STYLE = """
:root { --ink: #1d232a; --muted: #5b6572; --rule: #dde2e8; --accent: #1f5fa8; --warn: #8a4b00; }
* { box-sizing: border-box; }
html { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; }
body { margin: 0; }
header { padding: 1.4rem 2rem 1rem; border-bottom: 1px solid var(--rule); }
header h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
header p { margin: .1rem 0; color: var(--muted); }
.layout { display: flex; align-items: flex-start; }
nav { position: sticky; top: 0; flex: 0 0 15rem; max-height: 100vh; overflow-y: auto; padding: 1rem 1rem 2rem 2rem;
      font-size: .9rem; }
nav ol { list-style: none; margin: 0 0 .8rem; padding: 0; }
nav li { margin: .15rem 0; }
nav .group { font-weight: 600; margin-top: .6rem; }
nav a { color: var(--accent); text-decoration: none; }
main { flex: 1 1 auto; min-width: 0; max-width: 68rem; padding: 0 2rem 3rem 1rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .4rem; padding-top: .6rem; border-top: 2px solid var(--ink); }
h3 { font-size: 1.08rem; margin: 1.6rem 0 .3rem; }
.note { color: var(--muted); margin: .2rem 0 .6rem; max-width: 52rem; }
.figure { width: 100%; margin: .4rem 0 1rem; }
.picture { max-width: 100%; height: auto; border: 1px solid var(--rule); margin: .4rem .4rem 1rem 0; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--rule); padding: .25rem .6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
thead th { border-bottom: 2px solid var(--ink); }
.table-wrap { overflow-x: auto; max-width: 100%; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .4rem 0 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
code { font-size: .9em; }
.problems { color: var(--warn); }
footer { color: var(--muted); font-size: .85rem; border-top: 1px solid var(--rule); padding: 1rem 2rem; }
@media (max-width: 900px) { nav { display: none; } main { padding: 0 1rem 2rem; } }
@media print {
  @page { margin: 14mm 12mm; }
  html { font-size: 11pt; }
  nav, .modebar-container, .modebar { display: none !important; }
  main { max-width: none; padding: 0; }
  header, footer { padding-left: 0; padding-right: 0; }
  section.report-section, .figure, table, .picture { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-before: page; page-break-before: always; }
  h2:first-of-type { break-before: auto; page-break-before: auto; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


@dataclass(frozen=True)
class Group:
    """Sections under one heading of the report (Summary, Search, Model, Explanations, the domain's own)."""

    title: str
    sections: tuple[ReportSection, ...]


def render(title: str, facts: list[str], groups: list[Group], problems: list[str], footer: str) -> str:
    """The whole page. `facts`: short lines under the title; `problems`: sections left out, with why."""
    import plotly.offline

    counter = iter(range(1, 10**6))
    body = []
    for group in groups:
        body.append(f'<h2 id="{_attr(_group_id(group))}">{_esc(group.title)}</h2>')
        body += [_section(s, counter) for s in group.sections]
    if problems:
        items = "".join(f"<li>{_esc(p)}</li>" for p in problems)
        body.append(f'<h2 id="left-out">Left out</h2><ul class="problems" data-problems="{len(problems)}">{items}'
                    "</ul>")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{_attr(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_esc(title)}</title><style>{STYLE}</style>",
        # plotly.js, inlined: the page needs nothing from the network. Loaded first so figures below draw.
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>",
        f"<header><h1>{_esc(title)}</h1>{''.join(f'<p>{_esc(f)}</p>' for f in facts)}</header>",
        f'<div class="layout"><nav aria-label="contents">{_contents(groups, problems)}</nav>',
        f"<main>{''.join(body)}</main></div>",
        f"<footer>{_esc(footer)}</footer></body></html>\n",
    ])


def _contents(groups: list[Group], problems: list[str]) -> str:
    out = []
    for group in groups:
        links = "".join(f'<li><a href="#{_attr(s.anchor)}">{_esc(s.title)}</a></li>' for s in group.sections)
        out.append(f'<div class="group"><a href="#{_attr(_group_id(group))}">{_esc(group.title)}</a></div>'
                   f"<ol>{links}</ol>")
    if problems:
        out.append('<div class="group"><a href="#left-out">Left out</a></div>')
    return "".join(out)


def _group_id(group: Group) -> str:
    import re

    return "part-" + re.sub(r"[^a-z0-9]+", "-", group.title.lower()).strip("-")


def _section(section: ReportSection, counter: Any) -> str:
    parts = [f'<section class="report-section" id="{_attr(section.anchor)}" data-figures="{len(section.figures)}">',
             f"<h3>{_esc(section.title)}</h3>"]
    if section.note:
        parts.append(f'<p class="note">{_esc(section.note)}</p>')
    if section.html:
        parts.append(section.html)
    parts += [figure_html(f, f"figure-{next(counter)}") for f in section.figures]
    parts += [table_html(t) for t in section.tables]
    parts += [picture_html(p) for p in section.images]
    parts.append("</section>")
    return "".join(parts)


def figure_html(figure: Any, div_id: str) -> str:
    """A plotly figure as a div and the inline script that draws it (plotly.js is on the page already)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = figure if isinstance(figure, go.Figure) else go.Figure(figure)
    top = 50 if fig.layout.title.text else 30
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": top, "b": 50})
    height = int(fig.layout.height) if fig.layout.height else FIGURE_HEIGHT
    div = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOTLY_CONFIG,
                      default_width="100%", default_height=f"{height}px")
    return f'<div class="figure">{div}</div>'


def table_html(table: "pd.DataFrame") -> str:
    """A DataFrame as an HTML table, escaped: numbers to four significant digits and right-aligned, text left;
    the index only when it is named."""
    import numbers

    import pandas as pd

    show_index = any(name is not None for name in table.index.names)
    frame = table.reset_index() if show_index else table

    def cell(value: object, tag: str = "td") -> str:
        if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            return f"<{tag}></{tag}>"
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            text = f"{value:.4g}" if isinstance(value, float) else f"{value}"
            return f'<{tag} class="num">{_esc(text)}</{tag}>'
        return f"<{tag}>{_esc(value)}</{tag}>"

    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def picture_html(picture: Any) -> str:
    """A picture inlined as a data URI: a file (PNG, SVG, JPEG) or `(mime, bytes)`."""
    if isinstance(picture, tuple):
        mime, data = picture
        alt = "picture"
    else:
        path = Path(picture)
        data = path.read_bytes()
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        alt = path.name
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="picture" alt="{_attr(alt)}" src="data:{mime};base64,{encoded}">'


def facts_html(facts: list[tuple[str, Any]]) -> str:
    """A definition list of (label, value) pairs, escaped; a value of None is left out."""
    rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts if v is not None and v != "")
    return f'<dl class="facts">{rows}</dl>'


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=False)


def _attr(value: Any) -> str:
    return html.escape(str(value), quote=True)
