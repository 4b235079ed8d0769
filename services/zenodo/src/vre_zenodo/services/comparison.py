"""Output comparison of a reproduction: checksums first, then tables numerically, text by diff.

A file whose md5 equals the original's is ``identical``. Otherwise a table (FITS, CSV, ECSV,
Parquet, VOTable: read with astropy) is compared column by column: the same columns and row
count, and for numeric columns the largest relative difference ``|a - b| / max(|a|, |b|)``
(NaN equals NaN); every column at most ``tolerance`` apart makes the file ``within
tolerance``. Any other file that differs is ``differs``, with both sizes and, for text, a
short unified diff.
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Outcome = Literal["identical", "within tolerance", "differs", "missing"]
Verdict = Literal["reproduced", "reproduced within tolerance", "differs", "could not run"]

DEFAULT_TOLERANCE = 1e-6
_DIFF_LINES = 40
_TABLE_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".vot": "votable",
    ".votable": "votable",
}


class ColumnDifference(BaseModel):
    """A column of a table that is not equal in the reproduction."""

    column: str
    max_relative_difference: float | None = Field(
        default=None, description="Largest |a-b|/max(|a|,|b|) (numeric columns)."
    )
    detail: str | None = None


class FileComparison(BaseModel):
    """One output of the original run against the reproduction's."""

    path: str
    outcome: Outcome
    method: Literal["checksum", "table", "text", "bytes"] = "checksum"
    original_md5: str | None = None
    reproduced_md5: str | None = None
    original_bytes: int | None = None
    reproduced_bytes: int | None = None
    columns: list[ColumnDifference] = Field(
        default_factory=list, description="Columns that are not equal (tables)."
    )
    max_relative_difference: float | None = None
    diff: str | None = Field(default=None, description="A short unified diff (text files).")
    detail: str | None = None


def table_format(path: str) -> str | None:
    """The astropy reader of a table file by its name, or None."""
    return _TABLE_FORMATS.get(Path(path).suffix.lower())


def verdict(files: list[FileComparison]) -> Verdict:
    """reproduced: all identical; within tolerance: tables within it; else differs."""
    outcomes = {f.outcome for f in files}
    if outcomes & {"differs", "missing"}:
        return "differs"
    if "within tolerance" in outcomes:
        return "reproduced within tolerance"
    return "reproduced"


def compare(
    path: str,
    *,
    original_md5: str | None,
    reproduced_md5: str | None,
    original_bytes: int | None,
    reproduced_bytes: int | None,
    original: bytes | None = None,
    reproduced: bytes | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> FileComparison:
    """Compare one output; ``original``/``reproduced`` are the bytes where both are at hand."""
    result = FileComparison(
        path=path,
        outcome="identical",
        original_md5=original_md5,
        reproduced_md5=reproduced_md5,
        original_bytes=original_bytes,
        reproduced_bytes=reproduced_bytes,
    )
    if reproduced_md5 is None:
        result.outcome = "missing"
        result.detail = "the reproduction did not produce this output"
        return result
    if original_md5 is not None and original_md5 == reproduced_md5:
        return result
    result.outcome = "differs"
    if original is None or reproduced is None:
        result.detail = (
            "the checksums differ and the original bytes were not published: no closer look"
        )
        return result
    fmt = table_format(path)
    if fmt is not None:
        try:
            _compare_tables(result, fmt, original, reproduced, tolerance)
        except Exception as exc:  # any reader failure: compare as bytes/text instead
            result.detail = f"not readable as a {fmt} table ({type(exc).__name__}: {exc})"[:500]
        else:
            return result
    _compare_text(result, original, reproduced)
    return result


def _read_table(fmt: str, data: bytes, suffix: str) -> Any:
    from astropy.table import Table  # imported when a table differs: astropy is heavy

    # astropy's readers take paths for every format (Parquet needs one): a private temp file
    with tempfile.TemporaryDirectory(prefix="vre-compare-") as tmp:
        file = Path(tmp) / f"table{suffix}"
        file.write_bytes(data)
        return Table.read(file, format=fmt)


def _compare_tables(
    result: FileComparison, fmt: str, original: bytes, reproduced: bytes, tolerance: float
) -> None:
    import numpy as np

    suffix = Path(result.path).suffix
    a, b = _read_table(fmt, original, suffix), _read_table(fmt, reproduced, suffix)
    result.method = "table"
    missing = [c for c in a.colnames if c not in b.colnames]
    extra = [c for c in b.colnames if c not in a.colnames]
    for name in missing:
        result.columns.append(ColumnDifference(column=name, detail="missing in the reproduction"))
    for name in extra:
        result.columns.append(ColumnDifference(column=name, detail="not in the original"))
    if len(a) != len(b):
        result.detail = f"{len(a)} rows in the original, {len(b)} in the reproduction"
        return
    largest = 0.0
    exact = not missing and not extra
    for name in [c for c in a.colnames if c in b.colnames]:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            result.columns.append(ColumnDifference(column=name, detail="shapes differ"))
            exact = False
            continue
        if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number):
            xf, yf = x.astype(float).ravel(), y.astype(float).ravel()
            both_nan = np.isnan(xf) & np.isnan(yf)
            scale = np.maximum(np.abs(xf), np.abs(yf))
            delta = np.abs(xf - yf)
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.where(delta == 0, 0.0, delta / np.where(scale == 0, 1.0, scale))
            rel = np.where(both_nan, 0.0, rel)
            rel = np.where(np.isnan(rel), np.inf, rel)  # NaN against a number
            worst = float(rel.max()) if rel.size else 0.0
            if worst > 0:
                result.columns.append(ColumnDifference(column=name, max_relative_difference=worst))
                largest = max(largest, worst)
                exact = False
        elif not np.array_equal(x, y):
            result.columns.append(ColumnDifference(column=name, detail="values differ"))
            exact = False
    result.max_relative_difference = largest
    within = all(
        c.max_relative_difference is not None and c.max_relative_difference <= tolerance
        for c in result.columns
    )
    if exact or (within and not missing and not extra):
        result.outcome = "within tolerance"
        result.detail = (
            f"equal as tables within relative tolerance {tolerance:g} (largest relative "
            f"difference {largest:.3g}); the bytes differ"
        )
    else:
        names = ", ".join(c.column for c in result.columns)
        result.detail = f"columns differ beyond relative tolerance {tolerance:g}: {names}"


def _compare_text(result: FileComparison, original: bytes, reproduced: bytes) -> None:
    try:
        old, new = original.decode("utf-8"), reproduced.decode("utf-8")
    except UnicodeDecodeError:
        result.method = "bytes"
        result.detail = result.detail or (
            f"binary content differs ({len(original)} bytes, now {len(reproduced)})"
        )
        return
    result.method = "text"
    lines = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), "original", "reproduced", lineterm="", n=1
        )
    )
    shown = lines[:_DIFF_LINES]
    if len(lines) > _DIFF_LINES:
        shown.append(f"… {len(lines) - _DIFF_LINES} more diff lines")
    result.diff = "\n".join(shown)
