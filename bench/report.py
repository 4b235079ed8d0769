"""One table for every benchmark: value, baseline from the same run, ratio, target."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    """One measured figure, with the baseline it is compared to."""

    group: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> float | None:
        """value ÷ baseline (for throughputs: 1.0 means as fast as the baseline)."""
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def machine() -> str:
    """What the numbers were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores ({cpu})"
    )


def markdown(rows: list[Row]) -> str:
    """The table as Markdown."""
    lines = [
        "| group | measurement | value | unit | ratio to baseline | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        met = "" if r.ok is None else ("yes" if r.ok else "**no**")
        lines.append(
            f"| {r.group} | {r.name} | {_fmt(r.value)} | {r.unit} | {ratio} | {r.target} | {met} |"
        )
    return "\n".join(lines)
