"""Dilepton invariant mass: histogram and a simple resonance estimate (pure Python).

Reads events.csv (pt1, eta1, phi1, pt2, eta2, phi2 in GeV/rad), writes
results/mass.csv (one invariant mass per event), results/histogram.csv and
results/fit.ecsv (peak position and width of the resonance window).
"""

import csv
import math
import statistics
import sys
from pathlib import Path

WINDOW = (70.0, 110.0)  # GeV, around the resonance
BINS = 40


def invariant_mass(row):
    """Massless leptons: m^2 = 2 pt1 pt2 (cosh(d_eta) - cos(d_phi))."""
    d_eta, d_phi = row["eta1"] - row["eta2"], row["phi1"] - row["phi2"]
    return math.sqrt(max(0.0, 2 * row["pt1"] * row["pt2"] * (math.cosh(d_eta) - math.cos(d_phi))))


def main(source: str) -> None:
    with open(source, newline="") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    masses = [invariant_mass(r) for r in rows]
    out = Path("results")
    out.mkdir(exist_ok=True)
    with (out / "mass.csv").open("w") as handle:
        handle.write("mass\n" + "".join(f"{m:.4f}\n" for m in masses))
    low, high = WINDOW
    width = (high - low) / BINS
    counts = [0] * BINS
    for m in masses:
        if low <= m < high:
            counts[int((m - low) / width)] += 1
    with (out / "histogram.csv").open("w") as handle:
        handle.write("low,high,count\n")
        for i, n in enumerate(counts):
            handle.write(f"{low + i * width:.2f},{low + (i + 1) * width:.2f},{n}\n")
    # The resonance: events within +-2 bins of the fullest bin, their mean and spread.
    peak = max(range(BINS), key=counts.__getitem__)
    centre = low + (peak + 0.5) * width
    near = [m for m in masses if abs(m - centre) < 8.0]
    mean, sigma = statistics.fmean(near), statistics.pstdev(near)
    with (out / "fit.ecsv").open("w") as handle:
        handle.write(
            "# %ECSV 1.0\n# ---\n# datatype:\n"
            "# - {name: quantity, datatype: string}\n"
            "# - {name: value, datatype: float64}\n"
            "# - {name: unit, datatype: string}\n"
            "quantity value unit\n"
            f"mass {mean:.3f} GeV\nwidth {sigma:.3f} GeV\nevents {len(near)} count\n"
            f"total {len(masses)} count\n"
        )
    print(f"{len(masses)} events, resonance at {mean:.2f} GeV (spread {sigma:.2f} GeV)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "events.csv")
