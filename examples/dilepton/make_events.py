"""Synthetic dilepton events: a Z-like resonance on a falling background (seeded, small)."""

import math
import random


def make_events(n: int = 4000, *, seed: int = 7, mass: float = 91.2, width: float = 2.5):
    """Rows (pt1, eta1, phi1, pt2, eta2, phi2): 70 % resonance decays, 30 % background."""
    rng = random.Random(seed)  # noqa: S311 - reproducible physics, not secrets
    rows = []
    for _ in range(n):
        m = rng.gauss(mass, width) if rng.random() < 0.7 else 60 + rng.expovariate(1 / 25)
        eta1, eta2 = rng.uniform(-2.4, 2.4), rng.uniform(-2.4, 2.4)
        phi1 = rng.uniform(-math.pi, math.pi)
        dphi = rng.uniform(2.0, math.pi)
        phi2 = (phi1 + dphi + math.pi) % (2 * math.pi) - math.pi
        # choose pt1, then pt2 so that the pair has mass m
        pt1 = rng.uniform(25, 60)
        pt2 = m * m / (2 * pt1 * (math.cosh(eta1 - eta2) - math.cos(phi1 - phi2)))
        rows.append((pt1, eta1, phi1, pt2, eta2, phi2))
    return rows


def to_csv(rows) -> bytes:
    """The events as CSV bytes."""
    lines = ["pt1,eta1,phi1,pt2,eta2,phi2"]
    lines += [",".join(f"{v:.5f}" for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()
