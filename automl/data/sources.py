"""Where a run's table comes from: a registered dataset, the user's CSV/Parquet file, or a DataFrame.

The result is a `Table`: the raw frame plus what the dataset spec or the config says about it (target,
positive class, columns to drop and why, identifiers, sensitive attributes). Nothing here transforms values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.config import RunConfig
    from automl.plugins import PluginHost
    from automl.specs import DomainSpec

log = logging.getLogger(__name__)

READERS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Table:
    frame: "pd.DataFrame"
    target: str
    name: str
    task: Optional[str] = None
    positive_class: Any = None
    drop_columns: dict[str, str] = field(default_factory=dict)
    id_columns: list[str] = field(default_factory=list)
    sensitive: list[str] = field(default_factory=list)
    sensitive_is_feature: bool = False
    group_column: Optional[str] = None


def load_table(
    cfg: "RunConfig", host: "PluginHost", domain: "DomainSpec", frame: "pd.DataFrame | None" = None
) -> Table:
    """Resolve the run's data source: DataFrame > data.path > dataset > the domain's default dataset."""
    d = cfg.data
    if frame is not None:
        table = _from_frame(frame, d.target, name="dataframe")
    elif d.path:
        table = _from_frame(read_file(d.path), d.target, name=Path(d.path).name)
    else:
        name = cfg.dataset or domain.default_dataset
        if not name:
            raise DataError(
                "no data given: pass data.path=FILE data.target=COLUMN, or dataset=NAME "
                f"(registered datasets: {', '.join(host.datasets.names()) or 'none'})"
            )
        spec = host.datasets.get(name)
        log.info("dataset %s: %s", spec.name, spec.description or spec.source)
        try:
            raw = spec.loader()
        except Exception as exc:  # noqa: BLE001 - a loader failure is reported with the dataset's name
            raise DataError(f"dataset {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
        table = Table(
            frame=raw,
            target=d.target or spec.target,
            name=spec.name,
            task=spec.task,
            positive_class=spec.positive_class,
            drop_columns=dict(spec.drop_columns),
            id_columns=list(spec.id_columns),
            sensitive=list(spec.sensitive),
            group_column=spec.group_column,
        )
    # The config adds to what the spec says; it never silently removes.
    for col in d.drop_columns:
        table.drop_columns.setdefault(col, "dropped by data.drop_columns")
    table.id_columns += [c for c in d.id_columns if c not in table.id_columns]
    if d.sensitive and d.sensitive not in table.sensitive:
        table.sensitive.append(d.sensitive)
    if d.positive_class is not None:
        table.positive_class = d.positive_class
    if d.group_column:  # "none" turns off a dataset spec's grouping
        table.group_column = None if d.group_column.lower() == "none" else d.group_column
    table.sensitive_is_feature = d.sensitive_is_feature
    if cfg.domain.task != "auto":
        table.task = cfg.domain.task
    return table


def _from_frame(frame: Any, target: Optional[str], name: str) -> Table:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    if not target:
        raise DataError(
            f"no target column given for {name}: set data.target=COLUMN "
            f"(columns: {', '.join(map(str, frame.columns[:30]))})"
        )
    return Table(frame=frame, target=target, name=name)


def read_file(path: str) -> "pd.DataFrame":
    """Read a CSV or Parquet file, turning every failure into a one-line `DataError`."""
    import pandas as pd

    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist: check data.path (relative paths start at {Path.cwd()})")
    if p.is_dir():
        raise DataError(f"data.path {str(p)!r} is a folder: point it at a .csv or .parquet file")
    kind = READERS.get(p.suffix.lower())
    if kind is None:
        raise DataError(f"data file {p.name!r} has an unsupported extension: use .csv, .tsv or .parquet")
    try:
        if kind == "parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {p.name!r} is empty: it has no header and no rows") from None
    except PermissionError:
        raise DataError(f"data file {str(p)!r} cannot be read: permission denied") from None
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"data file {p.name!r} could not be read as {kind}: {first}") from None
