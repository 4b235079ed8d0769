"""`make bench`: run every benchmark, print one table, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.report import Row, machine, markdown

BENCHMARKS = [
    "bench.token_validation",
    "bench.gateway_overhead",
    "bench.datalake",
    "bench.workflows",
    "bench.load",
]
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--only", action="append", default=[], help="module name filter")
    parser.add_argument("--no-write", action="store_true", help="don't write docs/benchmarks.md")
    args = parser.parse_args()
    console = Console(width=150)
    rows: list[Row] = []
    for name in BENCHMARKS:
        if args.only and not any(o in name for o in args.only):
            continue
        with console.status(f"running {name}…"):
            rows.extend(importlib.import_module(name).run(quick=args.quick))
    table = Table(title="VRE benchmarks (ratios against a baseline measured in the same run)")
    for col in ("group", "measurement", "value", "unit", "ratio", "target", "met"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.group,
            r.name,
            f"{r.value:,.3f}" if r.value < 100 else f"{r.value:,.0f}",
            r.unit,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            "" if r.ok is None else ("yes" if r.ok else "no"),
        )
    console.print(table)
    console.print(f"machine: {machine()}")
    if not args.no_write:
        out = ROOT / "docs" / "benchmarks.md"
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        flags = (" --quick" if args.quick else "") + "".join(f" --only {o}" for o in args.only)
        old = out.read_text() if out.exists() else ""
        table = merge_tables(old, markdown(rows)) if args.only else markdown(rows)
        out.write_text(
            f"# Benchmarks\n\nWritten by `make bench{flags}` on {when}"
            f"{' (the other rows are from earlier runs)' if args.only else ''}.\n\n"
            f"Machine: {machine()}; load average at the end: {os.getloadavg()[0]:.2f}.\n\n"
            f"{table}\n{notes(old)}"
        )
        console.print(f"written to {out.relative_to(ROOT)}")


def _base(line: str) -> str:
    """The group of a table row without its qualifier: ``load (embedded)`` → ``load``."""
    return line.split("|")[1].strip().split(" (")[0]


def _table_block(old: str) -> tuple[int, int]:
    """Line indexes [start, end) of the results table: the first block of table lines."""
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return start, end


def merge_tables(old: str, new: str) -> str:
    """``old``'s table with the rows of the groups in ``new`` replaced by ``new``'s rows (in
    the place of the first replaced row; new groups at the end)."""
    start, end = _table_block(old)
    old_rows = [line for line in old.splitlines()[start:end] if "---" not in line]
    new_lines = new.splitlines()
    header, new_rows = new_lines[:2], new_lines[2:]
    replaced = {_base(line) for line in new_rows}
    merged: list[str] = []
    placed: set[str] = set()
    for line in old_rows[1:]:  # the first is the header
        base = _base(line)
        if base not in replaced:
            merged.append(line)
        elif base not in placed:
            placed.add(base)
            merged += [row for row in new_rows if _base(row) == base]
    merged += [row for row in new_rows if _base(row) not in placed]
    return "\n".join([*header, *merged])


def notes(old: str) -> str:
    """What follows the table in the old file (notes written by hand), kept as it is."""
    _, end = _table_block(old)
    rest = "\n".join(old.splitlines()[end:]).strip()
    return f"\n{rest}\n" if rest else ""


if __name__ == "__main__":
    main()
