"""Small pieces with sharp edges: staging links, paths, memory quantities, log scrubbing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from vre_workflows.backends.containers import memory_bytes
from vre_workflows.backends.reana import protect_http_logs
from vre_workflows.spec import check_relative_path, parse_spec_text
from vre_workflows.workspace import digest_file, inside, link_or_copy


def test_link_or_copy(tmp_path: Path) -> None:
    replica = tmp_path / "rse" / "file.dat"
    replica.parent.mkdir()
    replica.write_bytes(b"immutable replica")
    replica.chmod(0o644)

    linked = tmp_path / "ws" / "in" / "file.dat"
    assert link_or_copy(replica, linked, prefer_link=True, euid=1000) == "link"
    assert os.stat(linked).st_ino == os.stat(replica).st_ino
    assert not replica.stat().st_mode & 0o222  # the shared inode is read-only now

    as_root = tmp_path / "ws" / "root.dat"
    assert link_or_copy(replica, as_root, prefer_link=True, euid=0) == "copy"
    assert os.stat(as_root).st_ino != os.stat(replica).st_ino

    copied = tmp_path / "ws" / "copy.dat"
    assert link_or_copy(replica, copied, prefer_link=False) == "copy"
    assert digest_file(copied) == digest_file(replica)


def test_paths_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "escape").symlink_to("/etc")
    assert inside(tmp_path / "ws", "a/b.txt") == (tmp_path / "ws" / "a" / "b.txt").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x", "escape/passwd", "", "a\\b"):
        with pytest.raises(ValueError, match=r"."):
            inside(tmp_path / "ws", bad)
    assert check_relative_path("results/./x.txt") is None
    assert "'..'" in (check_relative_path("a/../b") or "")


def test_memory_quantities() -> None:
    assert memory_bytes("256Mi") == 256 * 1024**2
    assert memory_bytes("1G") == 10**9
    assert memory_bytes("1500") == 1500
    assert memory_bytes(None) is None
    with pytest.raises(ValueError, match="memory quantity"):
        memory_bytes("lots")


def test_yaml_locations() -> None:
    parsed = parse_spec_text("a:\n  b:\n    - x\n    - y: 1\n")
    assert parsed.source.locate(["a", "b", 1, "y"]) == (4, 10)
    assert parsed.source.locate(["a", "missing"]) == (2, 3)


def test_token_urls_are_scrubbed_from_http_logs(caplog: pytest.LogCaptureFixture) -> None:
    protect_http_logs()
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "GET", "https://reana/api/you?access_token=s3cr3t", "200"
    )
    assert "s3cr3t" not in caplog.text
    assert "access_token=***" in caplog.text
