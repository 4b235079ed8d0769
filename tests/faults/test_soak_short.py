"""The soak (bench/soak.py) on a short budget: 60 uploads, Rucio restarted halfway.

``make soak`` runs 1,000; this keeps the same checks in ``make test`` (about 30 s): every
upload completed with matching bytes and checksums, or failed cleanly with nothing left.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from bench.soak import soak

pytestmark = [pytest.mark.rucio, pytest.mark.slow]


def test_uploads_across_a_rucio_restart_are_whole_or_absent() -> None:
    counts = soak(60, seed=11, concurrency=8, console=Console(width=150, quiet=True))
    assert counts["lost"] == 0, counts
    assert counts["partial"] == 0, counts
    assert counts["completed"] > 0, counts  # uploads before the restart went through
    assert counts["failed cleanly"] > 0, counts  # and the restart did hit some
    assert sum(counts.values()) == 60
