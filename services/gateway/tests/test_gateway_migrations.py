"""The gateway's migrations from the alembic command line (alembic.ini, -x url=…); that the
models and migrations agree is tests/test_migrations.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_alembic_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alembic = [
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(ROOT / "services/gateway/alembic.ini"),
        "-x",
        f"url={url}",
    ]
    subprocess.run([*alembic, "upgrade", "head"], check=True, capture_output=True, cwd=ROOT)
    out = subprocess.run([*alembic, "check"], check=True, capture_output=True, text=True, cwd=ROOT)
    assert "No new upgrade operations detected" in out.stdout + out.stderr
