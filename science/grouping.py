"""Group per-subband UVH5 files into observations by the timestamps in their names.

The correlator names each subband file ``YYYY-MM-DDTHH:MM:SS_sbNN.hdf5`` and the 16 names of one
observation can disagree by up to ±tolerance around a common time. A group is therefore a set of files
whose name times all lie within one window 2·tolerance wide; observations are ~309 s apart, so windows
of different observations never overlap. A group is named after its earliest file.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from science.constants import GROUP_TOLERANCE_S, N_SUBBANDS, subband_name

FILENAME_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_SUBBAND_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})_sb(\d{2})\.hdf5$")


class SubbandFile(BaseModel, frozen=True):
    """One subband file and what its name says."""

    path: Path
    timestamp: datetime
    subband: int


class SubbandGroup(BaseModel):
    """The files of one observation, keyed by subband index (0 = sb00, the highest frequency)."""

    group_id: str
    timestamp: datetime
    files: dict[int, Path]

    @property
    def present(self) -> list[str]:
        """Names of the subbands present, in subband order."""
        return [subband_name(i) for i in sorted(self.files)]

    @property
    def missing(self) -> list[str]:
        """Names of the subbands absent from the group."""
        return [subband_name(i) for i in range(N_SUBBANDS) if i not in self.files]

    @property
    def is_complete(self) -> bool:
        """True when all 16 subbands are present."""
        return len(self.files) == N_SUBBANDS


def parse_subband_path(path: Path) -> SubbandFile | None:
    """The timestamp and subband of a correlator file name, or None if the name does not match."""
    match = _SUBBAND_FILE.match(Path(path).name)
    if match is None or int(match.group(2)) >= N_SUBBANDS:
        return None
    stamp = datetime.strptime(match.group(1), FILENAME_TIME_FORMAT).replace(tzinfo=UTC)
    return SubbandFile(path=Path(path), timestamp=stamp, subband=int(match.group(2)))


def group_files(files: list[SubbandFile], tolerance_s: float = GROUP_TOLERANCE_S) -> list[SubbandGroup]:
    """Partition subband files into observation groups, earliest first.

    Within a run of files no more than 2·tolerance apart, the window holding the most distinct subbands
    becomes a group, and the rest is grouped again; a stray or duplicate file ends up in a group of its own.
    """
    width = timedelta(seconds=2 * tolerance_s)
    ordered = sorted(files, key=lambda f: (f.timestamp, f.subband))
    runs: list[list[SubbandFile]] = []
    for f in ordered:
        if runs and f.timestamp - runs[-1][-1].timestamp <= width:
            runs[-1].append(f)
        else:
            runs.append([f])
    groups = []
    for run in runs:
        remaining = run
        while remaining:
            best: dict[int, SubbandFile] = {}
            for anchor in remaining:
                window: dict[int, SubbandFile] = {}
                for f in remaining:
                    if anchor.timestamp <= f.timestamp <= anchor.timestamp + width:
                        window.setdefault(f.subband, f)  # a duplicate subband waits for a later group
                if len(window) > len(best):
                    best = window
            taken = {id(f) for f in best.values()}
            remaining = [f for f in remaining if id(f) not in taken]
            first = min(f.timestamp for f in best.values())
            groups.append(
                SubbandGroup(
                    group_id=first.strftime(FILENAME_TIME_FORMAT),
                    timestamp=first,
                    files={index: f.path for index, f in sorted(best.items())},
                )
            )
    return sorted(groups, key=lambda g: g.timestamp)


def find_groups(
    input_dir: Path,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    tolerance_s: float = GROUP_TOLERANCE_S,
) -> list[SubbandGroup]:
    """Groups in ``input_dir`` with at least one file named within [start_time, end_time] (UTC).

    Files up to 2·tolerance beyond the range are considered too, so that a group at the edge is whole.
    """
    margin = timedelta(seconds=2 * tolerance_s)
    start = _as_utc(start_time) if start_time else None
    end = _as_utc(end_time) if end_time else None

    def within(stamp: datetime, pad: timedelta) -> bool:
        return (start is None or stamp >= start - pad) and (end is None or stamp <= end + pad)

    candidates = [
        parsed
        for path in sorted(Path(input_dir).glob("*_sb??.hdf5"))
        if (parsed := parse_subband_path(path)) is not None and within(parsed.timestamp, margin)
    ]
    by_path = {f.path: f.timestamp for f in candidates}
    groups = group_files(candidates, tolerance_s)
    return [g for g in groups if any(within(by_path[p], timedelta(0)) for p in g.files.values())]


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
