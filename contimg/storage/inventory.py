"""What is on disk: every recorded product as a ``Candidate`` (its files, their size on disk and their
newest modification time), read from the products database and the file system."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from contimg.storage.decide import Candidate
from contimg.storage.policy import Kind
from contimg.store import storage as store
from contimg.store.products import mjd_to_datetime


def disk_bytes(path: str) -> int:
    """Bytes ``path`` takes on disk (blocks allocated), a directory with everything in it; 0 if absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    total = st.st_blocks * 512
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
                except FileNotFoundError:
                    continue
    return total


def _modified(paths: Iterable[str]) -> datetime | None:
    newest = None
    for path in paths:
        try:
            mtime = os.lstat(path).st_mtime
        except FileNotFoundError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
    return None if newest is None else datetime.fromtimestamp(newest, UTC)


def _candidate(
    kind: Kind, paths: Iterable[Any], night: date | None, facts: Iterable[str] = ()
) -> Candidate | None:
    """A candidate of the files of ``paths`` that still exist; None when none does."""
    existing = tuple(dict.fromkeys(str(p) for p in paths if p and os.path.lexists(str(p))))
    modified = _modified(existing)
    if not existing or modified is None:
        return None
    size = sum(disk_bytes(p) for p in existing)
    return Candidate(kind, existing, size, modified, night, frozenset(facts))


def _night(when: datetime | None) -> date | None:
    return when.astimezone(UTC).date() if when is not None else None


def _facts(row: dict[str, Any], names: Iterable[str]) -> list[str]:
    return [name for name in names if row.get(name)]


def inventory(conn: psycopg.Connection) -> Iterator[Candidate]:
    """Every recorded product with at least one file still on disk, split into the policy's kinds: an image
    is its FITS image, primary beam and PB-corrected image (``images``), its residual, PSF
    and CLEAN model (``image_aux``) and its PNG (``previews``)."""
    found: list[Candidate | None] = []
    for row in store.raw_files(conn):
        found.append(_candidate("raw", [row["path"]], _night(row["file_time"]), _facts(row, ["converted"])))
    for row in store.measurement_sets(conn):
        found.append(
            _candidate("ms", [row["path"]], _night(row["mid_time"]), _facts(row, ["imaged", "measured"]))
        )
    for row in store.caltables(conn):
        tables = [*(row["apply_tables"] or []), *(row["tables"] or {}).values()]
        night = _night(row["valid_from"])
        found.append(_candidate("caltables", tables, night))
        found.append(_candidate("previews", (row["plots"] or {}).values(), night))
    for row in store.images(conn):
        night, measured = _night(row["mid_time"]), _facts(row, ["measured"])
        found.append(_candidate("images", [row["path"], row["pb_path"], row["pbcor_path"]], night, measured))
        aux = [row["residual_path"], row["psf_path"], row["model_path"]]
        found.append(_candidate("image_aux", aux, night, measured))
        found.append(_candidate("previews", [row["preview_path"]], night))
    for row in store.mosaics(conn):
        mid = row["mid_mjd"]
        night = mjd_to_datetime(mid).date() if mid is not None else None
        found.append(_candidate("mosaics", [row["path"], row["noise_path"]], night))
        found.append(_candidate("previews", [row["preview_path"]], night))
    yield from (c for c in found if c is not None)


def remove(candidate: Candidate) -> int:
    """Delete the candidate's files and directories; return the bytes freed. A path already gone is
    skipped; the size is measured just before, so a file that changed since the inventory counts as is."""
    freed = 0
    for path in candidate.paths:
        freed += disk_bytes(path)
        target = Path(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return freed
