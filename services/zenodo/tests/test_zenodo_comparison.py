"""Output comparison of reproductions (issue 21): checksums, tables with astropy, text diffs."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from vre_zenodo.services.comparison import compare, verdict


def _bytes(table: Table, suffix: str, fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        table.write(path, format=fmt)
        return path.read_bytes()


def _table(energy: np.ndarray) -> Table:
    return Table({"energy": energy, "count": np.arange(len(energy)), "name": ["a", "b", "c"]})


def _compare(path: str, a: bytes, b: bytes, tolerance: float = 1e-6):  # type: ignore[no-untyped-def]
    return compare(
        path,
        original_md5=hashlib.md5(a).hexdigest(),
        reproduced_md5=hashlib.md5(b).hexdigest(),
        original_bytes=len(a),
        reproduced_bytes=len(b),
        original=a,
        reproduced=b,
        tolerance=tolerance,
    )


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [(".fits", "fits"), (".csv", "ascii.csv"), (".ecsv", "ascii.ecsv"),
     (".parquet", "parquet"), (".vot", "votable")],
)  # fmt: skip
def test_tables_within_tolerance_and_beyond(suffix: str, fmt: str) -> None:
    base = np.array([1.0, 2.5, 1e3])
    original = _bytes(_table(base), suffix, fmt)
    same = _compare(f"out/t{suffix}", original, original)
    assert (same.outcome, same.method) == ("identical", "checksum")

    noisy = _bytes(_table(base * (1 + np.array([1e-9, -2e-9, 0.0]))), suffix, fmt)
    near = _compare(f"out/t{suffix}", original, noisy)
    assert near.outcome == "within tolerance", near
    assert near.method == "table"
    assert [c.column for c in near.columns] == ["energy"]
    assert near.max_relative_difference == pytest.approx(2e-9, rel=1e-3)

    changed = _bytes(_table(base * np.array([1.0, 1.01, 1.0])), suffix, fmt)
    far = _compare(f"out/t{suffix}", original, changed)
    assert far.outcome == "differs"
    assert [c.column for c in far.columns] == ["energy"]
    assert far.max_relative_difference == pytest.approx(0.01 / 1.01, rel=1e-6)
    assert "energy" in str(far.detail)
    assert verdict([same, near]) == "reproduced within tolerance"
    assert verdict([same, near, far]) == "differs"
    assert verdict([same]) == "reproduced"


def test_columns_rows_and_text() -> None:
    a = _bytes(_table(np.array([1.0, 2.0, 3.0])), ".csv", "ascii.csv")
    t = _table(np.array([1.0, 2.0, 3.0]))
    t.rename_column("count", "n")
    renamed = _compare("t.csv", a, _bytes(t, ".csv", "ascii.csv"))
    assert renamed.outcome == "differs"
    assert {(c.column, c.detail) for c in renamed.columns} == {
        ("count", "missing in the reproduction"),
        ("n", "not in the original"),
    }
    buf = io.StringIO()
    Table({"x": [1.0]}).write(buf, format="ascii.csv")
    fewer = _compare("t.csv", a, buf.getvalue().encode())
    assert fewer.outcome == "differs"

    text = _compare("log.txt", b"a\nb\nc\n", b"a\nB\nc\n")
    assert (text.outcome, text.method) == ("differs", "text")
    assert "-b" in str(text.diff)
    assert "+B" in str(text.diff)
    assert (text.original_bytes, text.reproduced_bytes) == (6, 6)
    binary = _compare("x.bin", b"\xff\x00", b"\xfe\x00\x01")
    assert (binary.outcome, binary.method) == ("differs", "bytes")
    broken = _compare("t.fits", b"not fits", b"not fits either")
    assert broken.outcome == "differs"
    assert "fits" in str(broken.detail)

    gone = compare("x", original_md5="a", reproduced_md5=None, original_bytes=1,
                   reproduced_bytes=None)  # fmt: skip
    assert gone.outcome == "missing"
    unpublished = compare("x", original_md5="a", reproduced_md5="b", original_bytes=1,
                          reproduced_bytes=1)  # fmt: skip
    assert unpublished.outcome == "differs"
    assert "not published" in str(unpublished.detail)
