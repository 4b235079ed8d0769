"""Metrics shared by several processes (the embedded mode's front and primary): each process
counts into files of one folder, and /metrics in any of them shows the sums."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COUNT = """
from vre_common.metrics import REQUESTS
REQUESTS.labels("datalake", "PUT", "/files/{scope}/{name:path}", "201").inc(AMOUNT)
"""
SHOW = """
from prometheus_client import generate_latest
from vre_common.metrics import registry
print(generate_latest(registry()).decode())
"""


def _python(code: str, folder: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_metrics_of_every_process_are_summed(tmp_path: Path) -> None:
    _python(COUNT.replace("AMOUNT", "2"), tmp_path)
    _python(COUNT.replace("AMOUNT", "3"), tmp_path)
    shown = _python(SHOW, tmp_path)
    line = next(
        line
        for line in shown.splitlines()
        if line.startswith("vre_http_requests_total{") and 'service="datalake"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) == 5.0


def test_sharing_must_be_set_up_before_prometheus_loads(tmp_path: Path) -> None:
    code = (
        "import prometheus_client\n"
        "from vre_common.metrics_files import share_metrics\n"
        "try:\n    share_metrics()\nexcept RuntimeError as e:\n    print('refused:', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("refused: share the metrics before prometheus_client loads")
