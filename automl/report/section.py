"""`ReportSection`: one section of `report.html`, as the host's own sections and a plugin's
`automl_report_sections` hook return it.

A section is data, not markup to be pasted: a title, an optional sentence under it, and content of four
kinds, rendered in this order: trusted HTML, plotly figures, tables, pictures. The page (`automl.report.page`)
inlines everything (plotly.js once, pictures as data URIs), so a section never names a URL.

Nothing here imports plotly, pandas or numpy: plugins import this type at module level through `automl.api`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

#: A picture to inline: a PNG / SVG / JPEG file, or `(mime type, bytes)`.
Picture = Union[Path, str, tuple[str, bytes]]


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    :param title: the heading (also the entry in the table of contents).
    :param note: a plain-text sentence under the heading: what the section shows, or why something is left
        out (escaped when rendered).
    :param html: a trusted HTML fragment, written by the section's author (escape any data in it with
        `html.escape`); no `<script>` and no external URL.
    :param figures: plotly figures (`plotly.graph_objects.Figure`, or its dict), drawn interactively.
    :param tables: pandas DataFrames, rendered as HTML tables (numbers to 4 significant digits).
    :param images: pictures inlined as data URIs: paths of PNG / SVG / JPEG files, or `(mime, bytes)`.
    :param key: a stable identifier (the HTML id); defaults to one derived from the title.
    """

    title: str
    note: str = ""
    html: str = ""
    figures: tuple[Any, ...] = ()
    tables: tuple[Any, ...] = ()
    images: tuple[Picture, ...] = ()
    key: str = ""

    def __post_init__(self) -> None:
        # Lists are accepted and stored as tuples, so a section stays immutable once built.
        for name in ("figures", "tables", "images"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value) if isinstance(value, list) else (value,))
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("a ReportSection needs a non-empty title")

    @property
    def anchor(self) -> str:
        """The section's HTML id: `key`, or the title in lower case with runs of other characters as '-'."""
        import re

        return self.key or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"

    @property
    def empty(self) -> bool:
        return not (self.note or self.html or self.figures or self.tables or self.images)
