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
        out.write_text(
            "# Benchmarks\n\nWritten by `make bench`"
            f"{' --quick' if args.quick else ''} on {when}.\n\nMachine: {machine()};"
            f" load average at the end: {os.getloadavg()[0]:.2f}.\n\n{markdown(rows)}\n"
        )
        console.print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
