"""Fixtures for the storage tests: a small file system that really fills (tmpfs, mounted as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stream.conftest import observations  # noqa: F401  (a session fixture, re-used)

DISK_SIZE = "16m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs: writes past it fail with ENOSPC, as on a full data disk. CI runs as root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def leave_free(disk: Path, free_bytes: int, name: str = "ballast") -> Path:
    """Fill ``disk`` with a ballast file so that about ``free_bytes`` stay free."""
    path = disk / name
    path.unlink(missing_ok=True)
    size = shutil.disk_usage(disk).free - free_bytes
    assert size > 0, f"{disk} has less than {free_bytes} bytes free already"
    with path.open("wb") as f:
        os.posix_fallocate(f.fileno(), 0, size)
    return path
