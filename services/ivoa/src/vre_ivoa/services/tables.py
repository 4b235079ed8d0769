"""Tables between the VO and the Data Lake: result formats, and Data Lake tables as uploads.

All functions block (astropy): call them in a worker thread.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vre_common.errors import InvalidInputError
from vre_ivoa.errors import VoServiceError

# Data Lake file extensions → astropy reader formats.
READ_FORMATS = {
    ".vot": "votable",
    ".xml": "votable",
    ".votable": "votable",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class Serialised:
    """A result table as the bytes to store."""

    data: bytes
    rows: int
    columns: list[str]


def _results_table(votable_bytes: bytes) -> Any:
    from astropy.io.votable import parse as parse_votable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        votable = parse_votable(io.BytesIO(votable_bytes), verify="ignore")
        resources = [r for r in votable.resources if r.type == "results"] or votable.resources
        for resource in resources:
            if resource.tables:
                return resource.tables[0].to_table(use_names_over_ids=True)
    raise VoServiceError("the service's VOTable has no results table")


def _fixed_width(table: Any) -> None:
    """Object columns (variable-length strings, as VOTable char arrays arrive) as fixed-width
    strings: FITS and Parquet writers want one dtype per column."""
    from astropy.table import MaskedColumn

    for name in table.colnames:
        column = table[name]
        if column.dtype.kind != "O":
            continue
        mask = getattr(column, "mask", None)
        values = [
            "" if (mask is not None and bool(mask[i])) or v is None else
            (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
            for i, v in enumerate(column)
        ]  # fmt: skip
        replacement = MaskedColumn(values, name=name, mask=mask) if mask is not None else values
        table.replace_column(name, replacement)


def _scalar_meta(table: Any) -> None:
    """Keep table metadata a FITS header can hold (strings, numbers, booleans)."""
    table.meta = {
        str(k)[:60]: v for k, v in table.meta.items() if isinstance(v, str | int | float | bool)
    }
    for column in table.columns.values():
        column.meta = {}


def serialise(votable_bytes: bytes, fmt: str, max_rows: int) -> Serialised:
    """The result in ``fmt`` (votable keeps the service's own document when not cut)."""
    table = _results_table(votable_bytes)
    columns = list(table.colnames)
    if fmt == "votable" and len(table) <= max_rows:
        return Serialised(votable_bytes, len(table), columns)
    if len(table) > max_rows:
        table = table[:max_rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "votable":
            buffer = io.BytesIO()
            table.write(buffer, format="votable")
            return Serialised(buffer.getvalue(), len(table), columns)
        _fixed_width(table)
        if fmt == "fits":
            _scalar_meta(table)
            buffer = io.BytesIO()
            table.write(buffer, format="fits")
            return Serialised(buffer.getvalue(), len(table), columns)
        # astropy's Parquet writer wants a path.
        with tempfile.TemporaryDirectory(prefix="vre-ivoa-") as scratch:
            path = Path(scratch) / "result.parquet"
            _scalar_meta(table)
            table.write(path, format="parquet")
            return Serialised(path.read_bytes(), len(table), columns)


def upload_votable(data: bytes, did_name: str, max_rows: int, field: str) -> bytes:
    """A Data Lake table (VOTable, FITS, CSV, ECSV, Parquet) as a VOTable for TAP_UPLOAD."""
    from astropy.table import Table

    suffix = Path(did_name).suffix.lower()
    candidates = [READ_FORMATS[suffix]] if suffix in READ_FORMATS else []
    candidates += [f for f in ("votable", "fits", "ascii.csv") if f not in candidates]
    table = None
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in candidates:
            try:
                if fmt == "parquet":  # astropy's Parquet reader needs pandas
                    import pyarrow
                    import pyarrow.parquet

                    arrow = pyarrow.parquet.read_table(pyarrow.BufferReader(data))
                    table = Table({n: arrow[n].to_numpy() for n in arrow.column_names})
                else:
                    table = Table.read(io.BytesIO(data), format=fmt)
                break
            except Exception as exc:  # astropy raises many kinds for a wrong format
                problems.append(f"{fmt}: {type(exc).__name__}")
        if table is None:
            raise InvalidInputError(
                f"{did_name} is not a table astropy can read (tried {', '.join(problems)})",
                errors=[{"loc": ["body", field], "msg": "not a readable table",
                         "type": "value_error"}],
            )  # fmt: skip
        if len(table) > max_rows:
            raise InvalidInputError(
                f"{did_name} has {len(table)} rows; uploads are limited to {max_rows}",
                errors=[{"loc": ["body", field], "msg": "too many rows", "type": "value_error"}],
            )
        if len(table.colnames) == 0:
            raise InvalidInputError(
                f"{did_name} has no columns",
                errors=[{"loc": ["body", field], "msg": "no columns", "type": "value_error"}],
            )
        _scalar_meta(table)
        buffer = io.BytesIO()
        table.write(buffer, format="votable")
    return buffer.getvalue()
