"""Metrics shared by several processes of one VRE (the embedded mode's front processes and
its primary): prometheus_client keeps each process's values in files of one folder, and
``/metrics`` sums them (vre_common.metrics). This module does not load prometheus_client: the
folder must be named before that loads, in the process that starts the others."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics() -> Path:
    """Share this process's metrics with the processes it starts (they inherit the variable)
    through files in a new private folder, removed when this process exits."""
    if "prometheus_client.values" in sys.modules:
        raise RuntimeError("share the metrics before prometheus_client loads")
    folder = Path(tempfile.mkdtemp(prefix="vre-metrics-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ[MULTIPROCESS_DIR] = str(folder)
    return folder
